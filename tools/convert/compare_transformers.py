#!/usr/bin/env python3
"""Compare ferry's logits with Hugging Face transformers' GPT2LMHeadModel on the same weights.

For the GPU machine (transformers and torch installed there; not run on the CPU-only machine):

    ferry convert runs/small/checkpoints/step_00000250.ckpt /tmp/small.safetensors
    python3 tools/convert/compare_transformers.py --ferry build/ferry --model /tmp/small.safetensors

The script asks `ferry tokenize` for the prompt's ids (so no tokenizer download is needed), writes
ferry's logits with `ferry generate --logits-out`, loads the same safetensors file into
GPT2LMHeadModel (config from the file's metadata, which `ferry convert` writes), and compares the
logits position by position. Exit status 0 when the largest difference is within --tolerance.
"""
import argparse
import json
import subprocess
import sys
import tempfile

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import GPT2Config, GPT2LMHeadModel


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ferry", default="build/ferry")
    ap.add_argument("--model", required=True, help="a safetensors file written by `ferry convert`")
    ap.add_argument("--prompt", default="The President said that the ferry would leave at dawn.")
    ap.add_argument("--tolerance", type=float, default=2e-3, help="max |ferry - transformers| over all logits")
    args = ap.parse_args()

    with safe_open(args.model, framework="pt") as f:
        meta = f.metadata() or {}
    need = ["n_layer", "n_head", "n_embd", "vocab_size", "n_positions"]
    if not all(k in meta for k in need):
        sys.exit(f"{args.model}: metadata lacks {need} (write the file with `ferry convert`)")
    cfg = GPT2Config(**{k: int(meta[k]) for k in need}, activation_function="gelu_new",
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=1e-5)
    state = load_file(args.model)
    tied = "lm_head.weight" not in state
    cfg.tie_word_embeddings = tied
    model = GPT2LMHeadModel(cfg)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if not m.endswith(".attn.bias") and not m.endswith(".attn.masked_bias")
               and not (tied and m == "lm_head.weight")]
    if missing or unexpected:
        sys.exit(f"state dict mismatch: missing {missing}, unexpected {unexpected}")
    if tied:
        model.tie_weights()
    model.eval()

    ids = [int(x) for x in subprocess.run([args.ferry, "tokenize"], input=args.prompt.encode(),
                                          capture_output=True, check=True).stdout.split()]
    if cfg.vocab_size != 50257:
        ids = list(args.prompt.encode())  # byte-level model
    with tempfile.NamedTemporaryFile(suffix=".f32") as out:
        subprocess.run([args.ferry, "generate", "--checkpoint", args.model, "--prompt", args.prompt,
                        "--max-tokens", "1", "--temperature", "0", "--device", "cpu", "--logits-out", out.name],
                       check=True, capture_output=True)
        ferry_logits = np.fromfile(out.name, dtype=np.float32).reshape(len(ids), cfg.vocab_size)
    with torch.no_grad():
        hf_logits = model(torch.tensor([ids])).logits[0].float().numpy()
    diff = np.abs(ferry_logits - hf_logits)
    report = {"tokens": len(ids), "vocab": cfg.vocab_size, "max_abs_diff": float(diff.max()),
              "mean_abs_diff": float(diff.mean()),
              "argmax_agree": float((ferry_logits.argmax(-1) == hf_logits.argmax(-1)).mean())}
    print(json.dumps(report))
    sys.exit(0 if report["max_abs_diff"] <= args.tolerance else 1)


if __name__ == "__main__":
    main()
