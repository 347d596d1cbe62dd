#!/usr/bin/env bash
# benchmarks/lm_eval_check.sh — gpu_check.sh's language-model loss step (issue 14): `ferry eval
# --task lm` on the CPU (fp32) and on CUDA (the same graph retyped to bf16), each case's two losses
# within a bf16 tolerance of each other, and the fixture's CUDA loss within it of the NumPy reference:
#   fixture   tests/fixtures/lm_eval (llm.c file, head size 8: the plain attention kernel)
#   interop   gpu_check's interop run folder (GPT-2's 50,257-token vocabulary, head size 16), if given
#   flash     a 1-step model of head size 64 (the flash attention kernel), vocabulary 50,257, T = 128
# Tolerance 0.02 nats: bf16 weights and activations move the fixture's loss by 2e-3 (measured by
# emulating bf16 rounding in NumPy), an order of magnitude below it.
#
# Usage: benchmarks/lm_eval_check.sh FERRY ROOT WORKDIR [INTEROP_RUN_FOLDER]
set -uo pipefail
FERRY=$1 ROOT=$2 WORK=$3 INTEROP=${4:-}
FX=$ROOT/tests/fixtures/lm_eval
mkdir -p "$WORK"
fail=0

# compare NAME MODEL SHARD B T [REFERENCE]
compare() {
  local name=$1 model=$2 shard=$3 B=$4 T=$5 ref=${6:-}
  local args=(eval --task lm --model "$model" --data "$shard" --batch-size "$B" --seq-len "$T")
  local cpu cuda
  cpu=$("$FERRY" "${args[@]}" --device cpu 2>"$WORK/$name-cpu.log") || { echo "FAIL $name: cpu run"; tail -3 "$WORK/$name-cpu.log"; fail=1; return; }
  cuda=$("$FERRY" "${args[@]}" --device cuda 2>"$WORK/$name-cuda.log") || { echo "FAIL $name: cuda run"; tail -3 "$WORK/$name-cuda.log"; fail=1; return; }
  python3 - "$name" "$cpu" "$cuda" "$ref" <<'PY' || fail=1
import json, sys
name, cpu, cuda, ref = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
d = cuda["loss"] - cpu["loss"]
ok = abs(d) <= 0.02 and cpu["tokens"] == cuda["tokens"] and cpu["windows"] == cuda["windows"]
line = "%s %s: cpu %.6f cuda %.6f (diff %+.2e)" % ("ok" if ok else "FAIL", name, cpu["loss"], cuda["loss"], d)
if ref:
    r = float(ref)
    ok_ref = abs(cuda["loss"] - r) <= 0.02
    ok = ok and ok_ref
    line += ", reference (bf16 weights, fp64) %.6f%s" % (r, "" if ok_ref else " FAIL")
print(line)
sys.exit(0 if ok else 1)
PY
}

ref=$(python3 -c "import json; print(json.load(open('$FX/expected.json'))['loss_bf16_weights'])")
compare fixture "$FX/gpt_f32.bin" "$FX/lm_eval_val_000000.bin" 2 16 "$ref"
[[ -n $INTEROP && -d $INTEROP ]] && compare interop "$INTEROP" "$FX/lm_eval_val_000000.bin" 2 16

printf '[model]\npreset = "micro"\nn_embd = 128\nn_head = 2\nvocab_size = 50257\nmax_seq_len = 128\n[train]\nbatch_size = 2\nseq_len = 32\nmax_steps = 1\neval_every = 0\ncheckpoint_every = 1\ndevice = "cpu"\n[data]\nsource = "synthetic"\n' >"$WORK/flash.toml"
python3 - "$WORK/flash_val_000000.bin" <<'PY'
import random, struct, sys
random.seed(14)
n = 2 * 2 * 128 + 1  # two windows of B=2, T=128
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<256i", 20240520, 1, n, *([0] * 253)))
    f.write(struct.pack("<%dH" % n, *[random.randrange(50257) for _ in range(n)]))
PY
if "$FERRY" pretrain --config "$WORK/flash.toml" --out "$WORK/flash" >"$WORK/flash-pretrain.log" 2>&1; then
  compare flash "$WORK/flash" "$WORK/flash_val_000000.bin" 2 128
else
  echo "FAIL flash: the model could not be made"; tail -3 "$WORK/flash-pretrain.log"; fail=1
fi
exit $fail
