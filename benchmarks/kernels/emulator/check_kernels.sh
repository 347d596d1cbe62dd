#!/usr/bin/env bash
# benchmarks/kernels/emulator/check_attention.sh — run the CUDA attention kernels' own source on the
# CPU emulator (prelude.h) against the CPU reference, on a machine without a GPU. Not part of the
# build or of ctest: a development check (about a minute on two cores). Usage: check_attention.sh
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
GEN=$(mktemp -d)
trap 'rm -rf "$GEN"' EXIT
mkdir -p "$GEN/kernels/cuda"
cp "$HERE/common_shadow.cuh" "$GEN/kernels/cuda/common.cuh"

# Text surgery on copies (the kernels themselves stay untouched): the tensor-core asm becomes the
# emulated product, and each .cu is cut before its host-side launch code.
python3 - "$ROOT" "$GEN" <<'PY'
import re, sys
root, gen = sys.argv[1], sys.argv[2]
tiles = open(f"{root}/kernels/cuda/attention_tiles.cuh").read()
tiles, n = re.subn(r"asm volatile\(.*?\);", "emu::mma(d, a, b);", tiles, count=1, flags=re.S)
assert n == 1, "mma asm not found"
open(f"{gen}/kernels/cuda/attention_tiles.cuh", "w").write(tiles)
for name, cut in [("attention_forward", "template <int HS>\nvoid launch_forward"),
                  ("attention_backward", "template <int HS>\nvoid launch_backward")]:
    src = open(f"{root}/kernels/cuda/{name}.cu").read()
    i = src.index(cut)
    open(f"{gen}/{name}.inc", "w").write(src[:i] + "}  // namespace\n}  // namespace ferry::kernels::cuda\n")
PY

cat > "$GEN/forward.cpp" <<'CPP'
#include "prelude.h"
namespace ferry::kernels::cuda { namespace { alignas(16) unsigned char smem[1 << 18]; } }
#include "attention_forward.inc"
void emu_attention_forward(ferry::bf16* out, float* lse, const ferry::bf16* qkv, const int32_t* kl, int B, int T,
                           int NH, int HS, bool causal) {
  using namespace ferry::kernels::cuda;
  const EmuDim grid{unsigned((T + 63) / 64), unsigned(B * NH), 1};
  if (HS == 64)
    emu::run_grid(grid, 128, [&] { attention_forward_kernel<64>(dev(out), lse, dev(qkv), kl, T, NH, causal); });
  else
    emu::run_grid(grid, 128, [&] { attention_forward_kernel<128>(dev(out), lse, dev(qkv), kl, T, NH, causal); });
}
CPP
cat > "$GEN/backward.cpp" <<'CPP'
#include "prelude.h"
namespace ferry::kernels::cuda { namespace { alignas(16) unsigned char smem[1 << 18]; } }
#include "attention_backward.inc"
void emu_attention_backward(ferry::bf16* dqkv, const ferry::bf16* dout, const ferry::bf16* qkv, const ferry::bf16* out,
                            const float* lse, const int32_t* kl, int B, int T, int NH, int HS, bool causal) {
  using namespace ferry::kernels::cuda;
  std::vector<float> D(size_t(B) * T * NH);
  const unsigned rows = unsigned(B * T * NH);
  emu::run_grid(EmuDim{(rows + 127) / 128, 1, 1}, 128,
                [&] { attention_backward_dot_kernel(D.data(), dev(dout), dev(out), B, T, NH, HS); });
  const EmuDim grid{unsigned((T + 63) / 64), unsigned(B * NH), 1};
  if (HS == 64) {
    emu::run_grid(grid, 128, [&] { attention_backward_dkdv_kernel<64>(dev(dqkv), dev(dout), dev(qkv), lse, D.data(), kl, T, NH, causal); });
    emu::run_grid(grid, 128, [&] { attention_backward_dq_kernel<64>(dev(dqkv), dev(dout), dev(qkv), lse, D.data(), kl, T, NH, causal); });
  } else {
    emu::run_grid(grid, 128, [&] { attention_backward_dkdv_kernel<128>(dev(dqkv), dev(dout), dev(qkv), lse, D.data(), kl, T, NH, causal); });
    emu::run_grid(grid, 128, [&] { attention_backward_dq_kernel<128>(dev(dqkv), dev(dout), dev(qkv), lse, D.data(), kl, T, NH, causal); });
  }
}
CPP
FLAGS=(-std=c++20 -O1 -pthread -w -I"$GEN" -I"$HERE" -I"$ROOT" -I/usr/local/cuda/include)
g++ "${FLAGS[@]}" -c "$GEN/forward.cpp" -o "$GEN/forward.o"
g++ "${FLAGS[@]}" -c "$GEN/backward.cpp" -o "$GEN/backward.o"
g++ "${FLAGS[@]}" "$HERE/attention_emulation.cpp" "$GEN/forward.o" "$GEN/backward.o" "$ROOT/kernels/cpu/attention.cpp" \
  -o "$GEN/attention_emulation"
"$GEN/attention_emulation"
