#!/usr/bin/env bash
# benchmarks/gpu_check.sh — the one script for a GPU machine (issues 3, 7 and 13): build for sm_90a
# with every core, run every `gpu` test (ctest reports one that skipped as skipped), the kernel
# benchmark (the trainer's shapes: GPT-2's vocabulary padded to 50304; cuDNN's attention checked
# against the reference, forward and backward, before its verdict), `ferry bench train` (GPT-2 124M
# and 350M, B=16, T=1024, bf16, with a per-op profile), transformers' logits on a ferry checkpoint,
# `ferry eval --task lm` on CUDA vs the CPU, sacreBLEU's own vectors for the C++ BLEU, and PyTorch's
# anchor script in the same run on the same card; then the ferry-vs-PyTorch tables (kernels,
# attention three ways, training ratios) and, last, one line per step.
# GPU_CHECK_TRAIN_SWEEP=1 adds B=8, 32 and T=2048 to the training benchmark. Everything lands under
# $OUT; the whole run stays inside GPU_CHECK_BUDGET_S (default 480 s = 8 minutes), each step under its
# own timeout, and the steps before PyTorch's leave it ANCHOR_RESERVE_S (default 75 s: its kernel
# figures come within a minute) so that every table has its baseline.
#
# Usage (repository root or anywhere):  OUT=/some/dir benchmarks/gpu_check.sh
# Never changes the card's settings; reads `nvidia-smi -L` only.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$ROOT/out/gpu_check}
BUILD=${BUILD:-$ROOT/build-gpu}
BUDGET=${GPU_CHECK_BUDGET_S:-480}
JOBS=$(nproc)
export OUT
mkdir -p "$OUT"
START=$SECONDS
: > "$OUT/steps.txt"

# left, and step NAME LIMIT_S COMMAND...: each step under the smaller of its limit and the time left.
source "$ROOT/benchmarks/lib_steps.sh"
ANCHOR_RESERVE=${ANCHOR_RESERVE_S:-75}
# A step's limit, less whatever would eat into PyTorch's reserved time.
before_anchor() {
  local limit=$1 room=$(($(left) - ANCHOR_RESERVE))
  echo $((limit < room ? limit : room))
}

nvidia-smi -L > "$OUT/device.txt" 2>&1 || true
cat "$OUT/device.txt"

# Third-party headers travel with the tree (third_party/usr/include, filled by
# scripts/vendor_headers.sh); CMake already looks there.
[[ -d $ROOT/third_party/usr/include ]] || echo "note: $ROOT/third_party/usr/include missing; configure may fail"

step configure "$(before_anchor 90)" cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CUDA_ARCHITECTURES=90a-real
# -k 0: a broken file in another room does not stop the kernels, their tests and the bench.
step build "$(before_anchor 240)" cmake --build "$BUILD" -j "$JOBS" -- -k 0
step gpu_tests "$(before_anchor 120)" ctest --test-dir "$BUILD" -L gpu --output-on-failure -j 4 --timeout 100
# --attention-choice: the verdict `--attention auto` reads (copy it to ~/.cache/ferry/ or point
# FERRY_ATTENTION_CHOICE at it).
step kernels_bench "$(before_anchor 150)" "$BUILD/benchmarks/kernels_bench" --json "$OUT/kernels.json" \
  --attention-choice "$OUT/attention_choice.json"

# End-to-end training (issue 7): GPT-2 124M and 350M at B=16, T=1024 on the CUDA backend, with a
# per-op profile; GPU_CHECK_TRAIN_SWEEP=1 adds B=8, 32 and T=2048.
TRAIN_ARGS=()
[[ ${GPU_CHECK_TRAIN_SWEEP:-0} == 1 ]] && TRAIN_ARGS+=(--sweep)
step train_bench "$(before_anchor 150)" "$BUILD/ferry" bench train --device cuda --model gpt2-124m,gpt2-350m --batch 16 \
  --seq-len 1024 --steps 20 --warmup 3 --profile --json "$OUT/train.json" "${TRAIN_ARGS[@]}"

# Interop (issue 4): a checkpoint with GPT-2's vocabulary, exported to safetensors, against
# transformers' GPT2LMHeadModel. Needs data/cache/gpt2 carried along (ferry tokenize).
step interop "$(before_anchor 60)" bash -c "'$BUILD/ferry' pretrain --config '$ROOT/configs/interop_check.toml' --out '$BUILD/interop' &&
  '$BUILD/ferry' convert '$BUILD/interop/checkpoints/'step_*.ckpt '$BUILD/interop/model.safetensors' &&
  python3 '$ROOT/tools/convert/compare_transformers.py' --ferry '$BUILD/ferry' --model '$BUILD/interop/model.safetensors'"

# Language-model loss (issue 14): `ferry eval --task lm` on CUDA (bf16) against the CPU (fp32).
step lm_eval "$(before_anchor 60)" bash "$ROOT/benchmarks/lm_eval_check.sh" "$BUILD/ferry" "$ROOT" "$BUILD/lm_eval" "$BUILD/interop"

# The one runner (issue 15): DP2, DP2 with ZeRO-1, TP2 and PP2 on this one GPU through the MPI
# communicator equal one process (its gpu-labelled tests ran in gpu_tests above:
# runner_gpu_mpi_test_np2 — DP2, ZeRO-1 over DP2 against one process and against DP2's optimizer
# state, TP2 with the TP ops' CUDA kernels and the norm summed over the group, the fine-tuning
# graphs under DP2 and TP2, PP2 on the runner's 1F1B with fp32 messages —,
# cuda_step_gpu_test, and runner_nccl_gpu_test: one NCCL rank runs whole captured steps with the
# DP buckets reduced on the communicator's stream, bit-identical to one process, and with ZeRO-1's
# reduce-scatter and all-gather inside the captured step, equal to its eager run). NCCL with
# several ranks (DP buckets, ZeRO-1's collectives, TP collectives inside the captured step, PP
# messages device to device) and the
# overlap of the bucket all-reduces with backward need a machine with several GPUs.
step parallel_gpu "$(before_anchor 60)" bash "$ROOT/benchmarks/parallel_gpu_check.sh" "$BUILD/ferry" "$ROOT" "$BUILD/parallel_gpu"

# BLEU (issue [translate]): sacreBLEU (installed there only) writes its own tokenizations and scores,
# and the C++ BLEU is held to them; the vectors come back in $OUT to be committed beside the test.
step sacrebleu "$(before_anchor 40)" bash -c "python3 '$ROOT/scripts/make_bleu_vectors.py' '$OUT/bleu_vectors.json' &&
  cp '$OUT/bleu_vectors.json' '$ROOT/tests/translate/bleu_vectors.json' &&
  '$BUILD/tests/bleu_test' --gtest_brief=1"

ANCHOR=""
for candidate in "$ROOT/shared/bench/torch_anchor.py" "$ROOT/../shared/bench/torch_anchor.py"; do
  [[ -f $candidate ]] && ANCHOR=$candidate && break
done
if [[ -n $ANCHOR ]]; then
  # Its kernel figures come within a minute; the training part that follows may not finish inside
  # the budget, so the table below also reads the figures from its log.
  step torch_anchor $(($(left) - 15)) python3 "$ANCHOR"
else
  echo "torch_anchor: script not found (shared/bench or ../shared/bench)" | tee -a "$OUT/steps.txt"
fi

python3 - "$OUT" <<'PY'
import json, os, re, sys
out = sys.argv[1]
def load(path):
    try:
        with open(path) as f: return json.load(f)
    except Exception: return None
ferry = load(os.path.join(out, "kernels.json")) or {"kernels": []}
torch = {}
anchors = load(os.path.join(out, "anchors.json"))
if anchors: torch = dict(anchors.get("kernels", {})); torch.update({k: anchors[k] for k in ("d2d_copy_TBps", "bf16_gemm_TFLOPs") if k in anchors})
else:
    try:
        text = open(os.path.join(out, "torch_anchor.log")).read()
        for k, v in re.findall(r'"(\w+)": ([-0-9.eE+]+)', text): torch[k] = float(v)
        m = re.search(r"ceilings ([0-9.eE+-]+) ([0-9.eE+-]+)", text)
        if m: torch["d2d_copy_TBps"], torch["bf16_gemm_TFLOPs"] = float(m.group(1)), float(m.group(2))
    except Exception: pass
def f(name, shape):
    for k in ferry["kernels"]:
        if k["name"] == name and k["shape"] == shape: return k
    return None
# (label, ferry kernel, shape, ferry field, scale, torch key, higher is better, target)
rows = [
  ("layernorm fwd 16384x768 GB/s", "layernorm_fwd", "16384x768", "TBps", 1e3, "layernorm_fwd_bf16_GBps", True, ">= 2500"),
  ("layernorm bwd 16384x768 GB/s", "layernorm_bwd", "16384x768", "TBps", 1e3, "layernorm_bwd_bf16_GBps", True, ">= 2000"),
  ("attn fwd B16H12T1024D64 TFLOP/s", "attention_fwd_causal", "B16H12T1024D64", "TFLOPs", 1, "sdpa_fwd_causal_B16H12T1024D64_TFLOPs", True, ">= SDPA"),
  ("attn bwd B16H12T1024D64 TFLOP/s", "attention_bwd_causal", "B16H12T1024D64", "TFLOPs", 1, "sdpa_bwd_causal_B16H12T1024D64_TFLOPs", True, ">= SDPA"),
  ("attn fwd B4H16T4096D128 TFLOP/s", "attention_fwd_causal", "B4H16T4096D128", "TFLOPs", 1, "sdpa_fwd_causal_B4H16T4096D128_TFLOPs", True, ">= SDPA"),
  ("attn bwd B4H16T4096D128 TFLOP/s", "attention_bwd_causal", "B4H16T4096D128", "TFLOPs", 1, "sdpa_bwd_causal_B4H16T4096D128_TFLOPs", True, ">= SDPA"),
  ("xent 8192x50257 ms (ferry fwd+bwd, torch fwd)", "cross_entropy_fwd_bwd", "8192x50257 ld50304", "ms", 1, "xent_fwd_8kx50257_ms", False, "<= 1.0 ms"),
  ("AdamW 124M ms", "adamw_bf16grad_fp32master", "124M params", "ms", 1, "adamw_fused_124M_ms", False, ">= 3.5 TB/s"),
  ("embedding fwd 16384 tok ms", "embedding_fwd", "16384tok x768 V50257", "ms", 1, "embedding_fwd_ms", False, ""),
  ("embedding bwd 16384 tok ms", "embedding_bwd", "16384tok x768 V50257", "ms", 1, "embedding_bwd_ms", False, "<= 0.25 ms"),
]
print()
print("device: %s" % ferry.get("device", "?"))
print("ceilings   ferry: copy %.3f TB/s, gemm %.1f TFLOP/s   torch: copy %s TB/s, gemm %s TFLOP/s" % (
    ferry.get("copy_TBps", 0), ferry.get("gemm_TFLOPs", 0),
    "%.3f" % torch["d2d_copy_TBps"] if "d2d_copy_TBps" in torch else "?",
    "%.1f" % torch["bf16_gemm_TFLOPs"] if "bf16_gemm_TFLOPs" in torch else "?"))
print("%-46s %12s %12s %9s  %s" % ("kernel", "ferry", "pytorch", "ferry/pt", "target"))
for label, name, shape, field, scale, tkey, higher, target in rows:
    k = f(name, shape)
    fv = k[field] * scale if k else None
    tv = torch.get(tkey)
    ratio = ""
    if fv and tv: ratio = "%.2fx" % ((fv / tv) if higher else (tv / fv))
    print("%-46s %12s %12s %9s  %s" % (label, "%.4g" % fv if fv is not None else "-", "%.4g" % tv if tv is not None else "-", ratio, target))
print("(ferry/pt > 1 means ferry is better; the table is from one run on one card)")
# Attention three ways, same run, same card: ferry's kernel, cuDNN's fused attention (built through
# the backend API, kernels/cuda/attention_cudnn.*), PyTorch SDPA (torch_anchor.py).
print()
print("cudnn: %s" % ferry.get("cudnn", "?"))
print("%-34s %10s %10s %10s %9s %9s" % ("attention TFLOP/s", "ferry", "cudnn", "pytorch", "ferry/cud", "ferry/pt"))
for shape in ("B16H12T1024D64", "B4H16T4096D128", "B16H16T1024D64"):
    for d in ("fwd", "bwd"):
        fk = f("attention_%s_causal" % d, shape)
        ck = f("attention_%s_causal_cudnn" % d, shape)
        fv = fk["TFLOPs"] if fk else None
        cv = ck["TFLOPs"] if ck else None
        tv = torch.get("sdpa_%s_causal_%s_TFLOPs" % (d, shape))
        if fv is None and cv is None and tv is None: continue
        cell = lambda v: "%.4g" % v if v else "-"
        print("%-34s %10s %10s %10s %9s %9s" % ("%s causal %s" % (d, shape), cell(fv), cell(cv), cell(tv),
              "%.2fx" % (fv / cv) if fv and cv else "", "%.2fx" % (fv / tv) if fv and tv else ""))
try:
    print("attention verdict for --attention auto: %s" % open(os.path.join(out, "attention_choice.json")).read().strip())
except Exception:
    print("attention verdict: none written (kernels_bench did not finish; see kernels_bench.log)")
PY
# Training throughput: ferry's bench beside the anchor's PyTorch runs (same card, same run).
python3 - "$OUT" <<'PY'
import json, os, re, sys
out = sys.argv[1]
try:
    ferry = json.load(open(os.path.join(out, "train.json")))
except Exception:
    ferry = {"runs": []}
torch = {}
try:
    torch = json.load(open(os.path.join(out, "anchors.json"))).get("train", {})
except Exception:
    try:
        for name, blob in re.findall(r"^(gpt2_\w+) (\{.*\})$", open(os.path.join(out, "torch_anchor.log")).read(), re.M):
            torch[name] = json.loads(blob)
    except Exception:
        pass
def run(model, B=16, T=1024):
    for r in ferry["runs"]:
        if r["model"] == model and r["batch"] == B and r["seq_len"] == T and r["status"] == "ok":
            return r
    return None
print()
print("training, B=16 T=1024 (ferry bf16 + AdamW fp32 master; matmul ceiling %.1f TFLOP/s)" % ferry.get("matmul_ceiling_tflops", 0))
print("%-12s %10s %10s %8s %10s %12s %12s %9s %9s" % ("model", "ferry ms", "tok/s", "MFU", "GiB", "torch key", "torch tok/s", "ratio", "mem ratio"))
for model, keys, target in [("gpt2-124m", ["gpt2_124M_compile", "gpt2_124M_eager"], 1.2), ("gpt2-350m", ["gpt2_350M_compile"], 1.15)]:
    r = run(model)
    for key in keys:
        t = torch.get(key, {})
        tok = t.get("tok_per_s")
        gib = r["run_device_bytes"] / 2**30 if r else None
        ratio = "%.2fx" % (r["tokens_per_s"] / tok) if r and tok else "-"
        mem = "%.2fx" % (t["peak_mem_GiB"] / gib) if r and gib and t.get("peak_mem_GiB") else "-"
        print("%-12s %10s %10s %8s %10s %12s %12s %9s %9s%s" % (
            model, "%.2f" % r["ms_per_step"] if r else "-", "%.0f" % r["tokens_per_s"] if r else "-",
            "%.3f" % r["mfu"] if r else "-", "%.2f" % gib if gib else "-", key, "%.0f" % tok if tok else "-",
            ratio, mem, "  (target >= %.2fx)" % target if key.endswith("compile") else ""))
for r in ferry["runs"]:
    if (r["batch"], r["seq_len"]) != (16, 1024):
        print("%-12s B=%-3d T=%-5d %s" % (r["model"], r["batch"], r["seq_len"],
              "%.2f ms, %.0f tok/s, MFU %.3f" % (r["ms_per_step"], r["tokens_per_s"], r["mfu"]) if r["status"] == "ok" else r["status"]))
print("(ratio = ferry tok/s / torch tok/s; mem ratio = torch peak / ferry device memory taken; > 1 is ferry better)")
PY
# Last: what ran. The gpu tests as ctest counted them (a skip is not a pass), then every step's status.
echo
if [[ -f $OUT/gpu_tests.log ]]; then
  passed=$(grep -cE "Test +#[0-9]+: .* Passed" "$OUT/gpu_tests.log")
  skipped=$(grep -cE "Test +#[0-9]+: .*Skipped" "$OUT/gpu_tests.log")
  failed=$(grep -cE "Test +#[0-9]+: .*(Failed|Timeout|Exception)" "$OUT/gpu_tests.log")
  echo "gpu tests: $passed passed, $skipped skipped, $failed failed (ctest -L gpu; details in gpu_tests.log)"
fi
cat "$OUT/steps.txt"
echo "gpu_check: $(( SECONDS - START ))s of ${BUDGET}s; logs and JSON in $OUT"
