#!/usr/bin/env python3
"""tools/make_lm_eval_fixture.py — the external reference for `ferry eval --task lm` (issue 14).

Writes a small random GPT-2 the way other programs store one, a token shard holding exactly one
batch, and the mean next-token loss of that batch computed here by a short NumPy forward pass with
Hugging Face GPT-2 semantics (learned positions, pre-norm blocks, LayerNorm eps 1e-5, tanh GELU,
causal attention scaled by 1/sqrt(head size), c_attn packing [Q|K|V], head tied to wte), in fp64.
Nothing here comes from ferry: the file layouts are written from llm.c's and safetensors' own
definitions.

  gpt_f32.bin        llm.c model file, version 3 (fp32): a 256-int32 header — 20240326, version,
                     maxT, V, L, NH, C, Vp — then wte [Vp, C], wpe [maxT, C], ln1w [L, C], ln1b,
                     qkvw [L, 3C, C], qkvb [L, 3C], attprojw [L, C, C], attprojb, ln2w, ln2b,
                     fcw [L, 4C, C], fcb [L, 4C], fcprojw [L, C, 4C], fcprojb [L, C], lnfw [C], lnfb.
                     V = 200 is padded to Vp = 256 rows; the padding rows hold random values (not
                     zeros), so a reader that let them into the softmax would be caught.
  gpt_bf16.bin       the same in version 5 (bf16, weights rounded to nearest even).
  hf/model.safetensors + hf/config.json
                     GPT2LMHeadModel's names (transformer.wte.weight, ... transformer.h.N.attn.c_attn.weight)
                     with Conv1D weights stored [in, out]; the tied lm_head is not stored; the number
                     of heads is only in config.json (as transformers writes it).
  lm_eval_val_000000.bin
                     llm.c token shard (header 20240520, version 1, count; uint16 ids): B*T + 1 tokens.
  expected.json      B, T, the loss of the fp32 weights and of the bf16-rounded weights (fp64
                     forward), ln(V) (what a uniform guess scores), and the token count.

The weights are drawn larger than GPT-2's initialization (std 0.02 would leave every logit near 0
and the loss near ln V whatever the forward pass did): a wrong block order, a missing bias or an
untransposed matrix moves the loss far beyond the tests' 1e-5.

Regenerate (deterministic; Debian's numpy under /usr/bin/python3):
    /usr/bin/python3 tools/make_lm_eval_fixture.py tests/fixtures/lm_eval
"""
import argparse
import json
import math
import os
import struct
import sys

try:
    import numpy as np
except ImportError as e:
    sys.exit(f"make_lm_eval_fixture.py needs NumPy ({e}); run it with /usr/bin/python3")

L, NH, C, V, MAXT = 2, 2, 16, 200, 32
VP = (V + 127) // 128 * 128
B, T = 2, 16
SEED = 20260514


def draw(rng):
    """The model's tensors in llm.c's order and shapes (the padded wte included)."""
    n = lambda *shape, std: rng.normal(0.0, std, size=shape)
    w = {
        "wte": n(VP, C, std=0.5),
        "wpe": n(MAXT, C, std=0.3),
        "ln1w": 1.0 + n(L, C, std=0.2), "ln1b": n(L, C, std=0.1),
        "qkvw": n(L, 3 * C, C, std=0.4), "qkvb": n(L, 3 * C, std=0.1),
        "attprojw": n(L, C, C, std=0.3), "attprojb": n(L, C, std=0.1),
        "ln2w": 1.0 + n(L, C, std=0.2), "ln2b": n(L, C, std=0.1),
        "fcw": n(L, 4 * C, C, std=0.3), "fcb": n(L, 4 * C, std=0.1),
        "fcprojw": n(L, C, 4 * C, std=0.2), "fcprojb": n(L, C, std=0.1),
        "lnfw": 1.0 + n(C, std=0.2), "lnfb": n(C, std=0.1),
    }
    return {k: v.astype(np.float32) for k, v in w.items()}


LLMC_ORDER = ["wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb", "ln2w", "ln2b", "fcw", "fcb",
              "fcprojw", "fcprojb", "lnfw", "lnfb"]


def bf16_bits(x):
    """fp32 → bf16 bit patterns, round to nearest even (no NaNs here)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def bf16_round(x):
    return (bf16_bits(x).astype(np.uint32) << 16).view(np.float32)


def layernorm(x, w, b):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5) * w + b


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def mean_loss(w, tokens):
    """Mean next-token cross-entropy of the batch (tokens: B*T+1 ids), fp64, HF GPT-2 forward."""
    p = {k: v.astype(np.float64) for k, v in w.items()}
    ids = np.asarray(tokens[:-1]).reshape(B, T)
    targets = np.asarray(tokens[1:]).reshape(B, T)
    hs = C // NH
    x = p["wte"][ids] + p["wpe"][np.arange(T)][None]
    causal = np.tril(np.ones((T, T), dtype=bool))
    for l in range(L):
        h = layernorm(x, p["ln1w"][l], p["ln1b"][l])
        qkv = h @ p["qkvw"][l].T + p["qkvb"][l]                       # [B, T, 3C]
        q, k, v = (qkv[..., i * C:(i + 1) * C].reshape(B, T, NH, hs).transpose(0, 2, 1, 3) for i in range(3))
        att = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hs)             # [B, NH, T, T]
        att = np.where(causal, att, -np.inf)
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        y = (att @ v).transpose(0, 2, 1, 3).reshape(B, T, C)
        x = x + y @ p["attprojw"][l].T + p["attprojb"][l]
        h = layernorm(x, p["ln2w"][l], p["ln2b"][l])
        h = gelu_tanh(h @ p["fcw"][l].T + p["fcb"][l])
        x = x + h @ p["fcprojw"][l].T + p["fcprojb"][l]
    x = layernorm(x, p["lnfw"], p["lnfb"])
    logits = x @ p["wte"][:V].T                                       # the padding rows are not logits
    m = logits.max(-1, keepdims=True)
    lse = (m + np.log(np.exp(logits - m).sum(-1, keepdims=True)))[..., 0]
    picked = np.take_along_axis(logits, targets[..., None], -1)[..., 0]
    return float((lse - picked).mean())


def write_llmc(path, w, bf16):
    header = np.zeros(256, dtype="<i4")
    header[:8] = [20240326, 5 if bf16 else 3, MAXT, V, L, NH, C, VP]
    with open(path, "wb") as f:
        f.write(header.tobytes())
        for name in LLMC_ORDER:
            f.write(bf16_bits(w[name]).astype("<u2").tobytes() if bf16 else w[name].astype("<f4").tobytes())


def write_safetensors(folder, w):
    tensors = [("transformer.wte.weight", w["wte"][:V]), ("transformer.wpe.weight", w["wpe"])]
    for l in range(L):
        h = f"transformer.h.{l}."
        tensors += [(h + "ln_1.weight", w["ln1w"][l]), (h + "ln_1.bias", w["ln1b"][l]),
                    (h + "attn.c_attn.weight", w["qkvw"][l].T), (h + "attn.c_attn.bias", w["qkvb"][l]),
                    (h + "attn.c_proj.weight", w["attprojw"][l].T), (h + "attn.c_proj.bias", w["attprojb"][l]),
                    (h + "ln_2.weight", w["ln2w"][l]), (h + "ln_2.bias", w["ln2b"][l]),
                    (h + "mlp.c_fc.weight", w["fcw"][l].T), (h + "mlp.c_fc.bias", w["fcb"][l]),
                    (h + "mlp.c_proj.weight", w["fcprojw"][l].T), (h + "mlp.c_proj.bias", w["fcprojb"][l])]
    tensors += [("transformer.ln_f.weight", w["lnfw"]), ("transformer.ln_f.bias", w["lnfb"])]
    header, blobs, at = {}, [], 0
    for name, t in tensors:
        data = np.ascontiguousarray(t, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [at, at + len(data)]}
        blobs.append(data)
        at += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    config = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_layer": L, "n_head": NH, "n_embd": C,
              "vocab_size": V, "n_positions": MAXT, "n_ctx": MAXT, "layer_norm_epsilon": 1e-5,
              "activation_function": "gelu_new", "tie_word_embeddings": True}
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")


def write_shard(path, tokens):
    header = np.zeros(256, dtype="<i4")
    header[:3] = [20240520, 1, len(tokens)]
    with open(path, "wb") as f:
        f.write(header.tobytes() + np.asarray(tokens, dtype="<u2").tobytes())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir")
    out = ap.parse_args().outdir
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(SEED)
    w = draw(rng)
    tokens = rng.integers(0, V, size=B * T + 1)
    tokens[3], tokens[17], tokens[B * T] = 0, V - 1, V - 1  # the first and last ids, as input and target
    write_llmc(os.path.join(out, "gpt_f32.bin"), w, bf16=False)
    write_llmc(os.path.join(out, "gpt_bf16.bin"), w, bf16=True)
    write_safetensors(os.path.join(out, "hf"), w)
    write_shard(os.path.join(out, "lm_eval_val_000000.bin"), tokens)
    expected = {"format": "ferry-lm-eval-fixture-1", "B": B, "T": T, "tokens": B * T,
                "config": {"n_layer": L, "n_head": NH, "n_embd": C, "vocab_size": V, "padded_vocab_size": VP,
                           "max_seq_len": MAXT},
                "loss_f32_weights": mean_loss(w, tokens),
                "loss_bf16_weights": mean_loss({k: bf16_round(v) for k, v in w.items()}, tokens),
                "uniform_loss": math.log(V)}
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=2)
        f.write("\n")
    print(json.dumps(expected))


if __name__ == "__main__":
    main()
