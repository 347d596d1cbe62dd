#!/usr/bin/env bash
# benchmarks/kernels/emulator/check_kernels.sh — run the CUDA kernels' own source (attention,
# layernorm, cross-entropy, embedding, AdamW and the gradient norm, GELU, and the fine-tuning ops:
# pooling, scale, the weighted loss sum) on the CPU emulator (prelude.h) against the CPU references,
# on a machine without a GPU. Not part of the build or of ctest: a development check (about a
# minute on two cores). Exit status 1 on any mismatch. Usage: check_kernels.sh
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
GEN=$(mktemp -d)
trap 'rm -rf "$GEN"' EXIT
mkdir -p "$GEN/kernels/cuda"

# Text surgery on copies (the kernels themselves stay untouched): CUDA headers give way to the
# prelude, the tensor-core asm becomes the emulated product, block-level __shared__ arrays become
# function statics (one block runs at a time), and each .cu is cut before its host-side code.
python3 - "$ROOT" "$GEN" <<'PY'
import re, sys
root, gen = sys.argv[1], sys.argv[2]
common = open(f"{root}/kernels/cuda/common.cuh").read()
for inc in ("#include <cuda_bf16.h>\n", "#include <cuda_runtime.h>\n", '#include "kernels/cuda_check.h"\n'):
    assert inc in common, inc
    common = common.replace(inc, "")
common = common.replace("#pragma once\n", '#pragma once\n#include "prelude.h"\n', 1)
open(f"{gen}/kernels/cuda/common.cuh", "w").write(common)
tiles = open(f"{root}/kernels/cuda/attention_tiles.cuh").read()
# The tensor-core product, the two ldmatrix forms, cp.async (a plain copy; commit and wait vanish).
tiles, n = re.subn(r"asm volatile\(\s*\"mma\.sync.*?\);", "emu::mma(d, a, b);", tiles, count=1, flags=re.S)
assert n == 1, "mma asm not found"
tiles, n = re.subn(r"asm volatile\(\"ldmatrix[^\"]*\.x4\.shared.*?\);", "emu::ldmatrix_x4(r, row, false);", tiles, count=1, flags=re.S)
assert n == 1, "ldmatrix asm not found"
tiles, n = re.subn(r"asm volatile\(\"ldmatrix[^\"]*\.x4\.trans.*?\);", "emu::ldmatrix_x4(r, row, true);", tiles, count=1, flags=re.S)
assert n == 1, "ldmatrix.trans asm not found"
tiles, n = re.subn(r"asm volatile\(\"cp\.async\.cg.*?\);", "emu::cp_async16(dst, src, src_bytes);", tiles, count=1, flags=re.S)
assert n == 1, "cp.async asm not found"
tiles, n = re.subn(r"asm volatile\(\"cp\.async\.(commit|wait)_group.*?\);", "", tiles, flags=re.S)
assert n == 2, "cp.async commit/wait asm not found"
assert "asm" not in tiles.replace("// ", ""), "an asm statement the emulator does not know"
open(f"{gen}/kernels/cuda/attention_tiles.cuh", "w").write(tiles)
cuts = {"attention_forward": "template <int HS>\nvoid launch_forward",
        "attention_backward": "template <int HS>\nvoid launch_backward",
        "layernorm": "int backward_blocks(",
        "cross_entropy": "\n}  // namespace\n",
        "embedding": "int id_bits(int V)",
        "adamw": "\n}  // namespace\n",
        "gelu": "bool aligned16(",
        "pooling": "\n}  // namespace\n"}
for name, cut in cuts.items():
    src = open(f"{root}/kernels/cuda/{name}.cu").read()
    src = src[:src.index(cut)]
    src = "\n".join(l for l in src.split("\n") if not l.startswith("#include <cub"))
    src = re.sub(r"^(\s*)__shared__ ", r"\1static ", src, flags=re.M)
    open(f"{gen}/{name}.inc", "w").write(src + "\n}  // namespace\n}  // namespace ferry::kernels::cuda\n")
PY

KERNELS="attention_forward attention_backward layernorm cross_entropy embedding adamw gelu pooling"
# One translation unit per kernel file (their anonymous namespaces reuse names like kThreads).
for name in $KERNELS; do
  cat > "$GEN/$name.cpp" <<CPP
#include "prelude.h"
namespace ferry::kernels::cuda { namespace { alignas(16) unsigned char smem[1 << 18]; } }
#include "$name.inc"
#define EMU_$name 1
#include "launchers.inc"
CPP
done
cp "$HERE/launchers.inc" "$GEN/launchers.inc"
FLAGS=(-std=c++20 -O1 -pthread -w -I"$GEN" -I"$HERE" -I"$ROOT" -I/usr/local/cuda/include)
objs=()
for name in $KERNELS; do
  g++ "${FLAGS[@]}" -c "$GEN/$name.cpp" -o "$GEN/$name.o" &
  objs+=("$GEN/$name.o")
done
wait
g++ "${FLAGS[@]}" "$HERE/kernels_emulation.cpp" "${objs[@]}" "$ROOT"/kernels/cpu/{attention,layernorm,cross_entropy,embedding,adamw,gelu,pooling}.cpp \
  -fopenmp -o "$GEN/kernels_emulation"
"$GEN/kernels_emulation"
