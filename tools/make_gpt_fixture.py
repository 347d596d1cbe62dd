#!/usr/bin/env python3
"""tools/make_gpt_fixture.py — the external PyTorch reference for ferry's GPT (issue [cuda]).

Writes a tiny GPT-2 (2 blocks, 64 channels, 4 heads, vocabulary 128) as ferry builds it — pre-norm
blocks, LayerNorm eps 1e-5, tanh GELU, causal attention scaled by 1/sqrt(head size), qkv packed as
[Q|K|V] (each [n_head, head_size]) in the 3C output rows, weights [out, in] like nn.Linear, head
tied to wte, wpe with max_seq_len rows — together with one batch and what PyTorch computes for it:

  params      every weight, by ferry's parameter name (f32 values; the f64 model uses the same
              values exactly, so both precisions start from one point)
  logits      [B, T, V] f64
  loss        mean cross-entropy over the non-ignored targets (f64 and f32)
  grads       every parameter's gradient, f64 (the tied wte's gradient sums head and embedding)
  adamw       5 AdamW steps on the same batch (constant lr, betas 0.9/0.95, eps 1e-8, decoupled
              weight decay 0.1 on matrices — wte and wpe included — and none on biases or norm
              gains, global gradient-norm clipping at 1.0 with scale = clip / (norm + 1e-6) when
              norm > clip): each step's loss and norm before its update and the loss after the
              last, in f64 and f32; plus the parameters after the 5 updates (f64 run, stored
              rounded to f32).

The model uses PyTorch's own F.layer_norm, F.gelu(approximate="tanh"), F.softmax, F.cross_entropy
and torch.optim.AdamW, so the check is independent of ferry's code. Attention is written out by
hand (torch 1.13 has no scaled_dot_product_attention).

Output: OUTDIR/gpt_tiny.json (manifest: config, hyper-parameters, scalars, and for every tensor its
kind, name, dtype, shape and byte offset) and OUTDIR/gpt_tiny.bin (little-endian raw tensors, each
8-byte aligned; FNV-1a 64 of the whole blob in the manifest so that corruption is caught).
Deterministic: fixed seeds, one thread.

Regenerate (Debian's python3-torch and python3-numpy live under /usr/bin/python3):
    /usr/bin/python3 tools/make_gpt_fixture.py tests/fixtures
"""
import argparse
import json
import math
import os
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:  # the pyenv python3 first on PATH has no torch
    sys.exit(f"make_gpt_fixture.py needs PyTorch and NumPy ({e}); run it with /usr/bin/python3")

FORMAT = "ferry-gpt-fixture-1"
CONFIG = {"n_layer": 2, "n_head": 4, "n_embd": 64, "vocab_size": 128, "max_seq_len": 32,
          "tied_head": True, "causal": True}
BATCH = 4
SEQ_LEN = 24            # < max_seq_len: wpe rows 24..31 get no gradient, only weight decay
IGNORE_INDEX = -1
IGNORED_POSITIONS = [(0, 3), (2, 23), (3, 0)]  # targets set to IGNORE_INDEX
ADAMW = {"lr": 5e-3, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.1, "grad_clip": 1.0,
         "steps": 5}
SEED = 3141592


def param_specs(cfg):
    """(name, shape, weight_decay) in build_gpt's order (engine/model/gpt.cpp)."""
    C, V = cfg["n_embd"], cfg["vocab_size"]
    specs = [("wte", (V, C), True), ("wpe", (cfg["max_seq_len"], C), True)]
    for l in range(cfg["n_layer"]):
        p = f"h.{l}."
        specs += [
            (p + "ln_1.weight", (C,), False), (p + "ln_1.bias", (C,), False),
            (p + "attn.qkv.weight", (3 * C, C), True), (p + "attn.qkv.bias", (3 * C,), False),
            (p + "attn.proj.weight", (C, C), True), (p + "attn.proj.bias", (C,), False),
            (p + "ln_2.weight", (C,), False), (p + "ln_2.bias", (C,), False),
            (p + "mlp.fc.weight", (4 * C, C), True), (p + "mlp.fc.bias", (4 * C,), False),
            (p + "mlp.proj.weight", (C, 4 * C), True), (p + "mlp.proj.bias", (C,), False),
        ]
    specs += [("ln_f.weight", (C,), False), ("ln_f.bias", (C,), False)]
    return specs


def make_params(cfg, gen):
    """f32 weights, larger than GPT-2's init so that every path carries signal: attention is far
    from uniform, biases and norm parameters are not at their neutral values."""
    params = {}
    for name, shape, _ in param_specs(cfg):
        if name.endswith(".weight") and ("ln_" in name):
            t = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        elif name.endswith(".bias"):
            t = 0.05 * torch.randn(shape, generator=gen)
        elif name in ("wte", "wpe"):
            t = 0.15 * torch.randn(shape, generator=gen)
        else:
            fan_in = shape[1]
            scale = 0.5 if name.endswith("proj.weight") else 1.0
            t = scale / math.sqrt(fan_in) * torch.randn(shape, generator=gen)
        params[name] = t.to(torch.float32).contiguous()
    return params


def make_batch(cfg, gen):
    V = cfg["vocab_size"]
    tokens = torch.randint(0, V, (BATCH, SEQ_LEN), generator=gen, dtype=torch.int64)
    targets = torch.randint(0, V, (BATCH, SEQ_LEN), generator=gen, dtype=torch.int64)
    for b, t in IGNORED_POSITIONS:
        targets[b, t] = IGNORE_INDEX
    return tokens, targets


def gpt_logits(p, tokens, cfg):
    B, T = tokens.shape
    C, NH = cfg["n_embd"], cfg["n_head"]
    HS = C // NH
    x = p["wte"][tokens] + p["wpe"][:T]
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for l in range(cfg["n_layer"]):
        h = f"h.{l}."
        a = F.layer_norm(x, (C,), p[h + "ln_1.weight"], p[h + "ln_1.bias"], eps=1e-5)
        qkv = F.linear(a, p[h + "attn.qkv.weight"], p[h + "attn.qkv.bias"])  # [B,T,3C] = Q|K|V
        q, k, v = (t.view(B, T, NH, HS).transpose(1, 2) for t in qkv.split(C, dim=-1))
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(HS)
        if cfg["causal"]:
            scores = scores.masked_fill(~causal, float("-inf"))
        y = (F.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(B, T, C)
        x = x + F.linear(y, p[h + "attn.proj.weight"], p[h + "attn.proj.bias"])
        m = F.layer_norm(x, (C,), p[h + "ln_2.weight"], p[h + "ln_2.bias"], eps=1e-5)
        m = F.gelu(F.linear(m, p[h + "mlp.fc.weight"], p[h + "mlp.fc.bias"]), approximate="tanh")
        x = x + F.linear(m, p[h + "mlp.proj.weight"], p[h + "mlp.proj.bias"])
    x = F.layer_norm(x, (C,), p["ln_f.weight"], p["ln_f.bias"], eps=1e-5)
    return F.linear(x, p["wte"])  # tied head


def gpt_loss(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE_INDEX)


def leaf_params(init, dtype):
    return {n: t.to(dtype).clone().requires_grad_(True) for n, t in init.items()}


def forward_backward(init, tokens, targets, cfg):
    p = leaf_params(init, torch.float64)
    logits = gpt_logits(p, tokens, cfg)
    loss = gpt_loss(logits, targets)
    loss.backward()
    return logits.detach(), loss.item(), {n: t.grad.detach() for n, t in p.items()}


def train(init, tokens, targets, cfg, dtype):
    """ADAMW["steps"] AdamW steps on one batch, with ferry's clipping rule."""
    p = leaf_params(init, dtype)
    decay = {n for n, _, d in param_specs(cfg) if d}
    groups = [{"params": [t for n, t in p.items() if n in decay], "weight_decay": ADAMW["weight_decay"]},
              {"params": [t for n, t in p.items() if n not in decay], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=ADAMW["lr"], betas=(ADAMW["beta1"], ADAMW["beta2"]), eps=ADAMW["eps"])
    losses, norms = [], []
    for _ in range(ADAMW["steps"]):
        opt.zero_grad(set_to_none=True)
        loss = gpt_loss(gpt_logits(p, tokens, cfg), targets)
        loss.backward()
        norm = math.sqrt(sum(float((t.grad.double() ** 2).sum()) for t in p.values()))
        if norm > ADAMW["grad_clip"]:
            scale = ADAMW["grad_clip"] / (norm + 1e-6)
            for t in p.values():
                t.grad.mul_(scale)
        opt.step()
        losses.append(loss.item())
        norms.append(norm)
    with torch.no_grad():
        after = gpt_loss(gpt_logits(p, tokens, cfg), targets).item()
    return losses, norms, after, {n: t.detach() for n, t in p.items()}


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


class Blob:
    def __init__(self):
        self.parts, self.size, self.entries = [], 0, []

    def add(self, kind, name, tensor, dtype):
        np_dtype = {"f32": "<f4", "f64": "<f8", "i32": "<i4"}[dtype]
        data = np.ascontiguousarray(tensor.detach().cpu().numpy().astype(np_dtype)).tobytes()
        pad = (-self.size) % 8
        self.parts.append(b"\0" * pad)
        self.size += pad
        self.entries.append({"kind": kind, "name": name, "dtype": dtype, "shape": list(tensor.shape),
                             "offset": self.size, "bytes": len(data)})
        self.parts.append(data)
        self.size += len(data)

    def bytes(self):
        return b"".join(self.parts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir", help="folder for gpt_tiny.json and gpt_tiny.bin (tests/fixtures)")
    args = ap.parse_args()
    torch.set_num_threads(1)  # reductions in one fixed order, whatever the machine
    gen = torch.Generator().manual_seed(SEED)
    cfg = CONFIG
    init = make_params(cfg, gen)
    tokens, targets = make_batch(cfg, gen)

    logits, loss64, grads = forward_backward(init, tokens, targets, cfg)
    with torch.no_grad():
        loss32 = gpt_loss(gpt_logits(leaf_params(init, torch.float32), tokens, cfg), targets).item()
    runs = {name: train(init, tokens, targets, cfg, dt) for name, dt in (("f64", torch.float64),
                                                                         ("f32", torch.float32))}

    blob = Blob()
    blob.add("batch", "tokens", tokens, "i32")
    blob.add("batch", "targets", targets, "i32")
    for name, _, _ in param_specs(cfg):
        blob.add("param", name, init[name], "f32")
    blob.add("logits", "logits", logits, "f64")
    for name, _, _ in param_specs(cfg):
        blob.add("grad", name, grads[name], "f64")
    for name, _, _ in param_specs(cfg):
        blob.add("trained", name, runs["f64"][3][name], "f32")
    data = blob.bytes()

    manifest = {
        "format": FORMAT,
        "generator": "tools/make_gpt_fixture.py",
        "regenerate": "/usr/bin/python3 tools/make_gpt_fixture.py tests/fixtures",
        "torch_version": torch.__version__.split("+")[0],
        "seed": SEED,
        "config": cfg,
        "batch": {"batch": BATCH, "seq_len": SEQ_LEN, "ignore_index": IGNORE_INDEX},
        "adamw": ADAMW,
        "loss": {"f64": loss64, "f32": loss32},
        "train": {dt: {"losses": r[0], "grad_norms": r[1], "loss_after": r[2]} for dt, r in runs.items()},
        "blob": "gpt_tiny.bin",
        "blob_bytes": len(data),
        "blob_fnv1a64": fnv1a64(data),
        "tensors": blob.entries,
    }
    os.makedirs(args.outdir, exist_ok=True)
    with open(os.path.join(args.outdir, "gpt_tiny.bin"), "wb") as f:
        f.write(data)
    # One line per tensor entry keeps the manifest readable and its diffs small.
    head = json.dumps({k: v for k, v in manifest.items() if k != "tensors"}, indent=1)
    text = head[:-2] + ',\n "tensors": [\n' + ",\n".join("  " + json.dumps(e) for e in blob.entries) + "\n ]\n}\n"
    with open(os.path.join(args.outdir, "gpt_tiny.json"), "w") as f:
        f.write(text)
    print(f"loss f64 {loss64:.10f} f32 {loss32:.10f}; steps f64 {runs['f64'][0]} -> {runs['f64'][2]}; "
          f"norms {runs['f64'][1]}; blob {len(data)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
