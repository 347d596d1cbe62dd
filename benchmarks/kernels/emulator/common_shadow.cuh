// Stand-in for kernels/cuda/common.cuh under the CPU emulator: the same pack type and loads, no
// CUDA runtime.
#pragma once
#include "prelude.h"
#include "kernels/dtype.h"

#define FERRY_CUDA_CHECK(call) ((void)0)

namespace ferry::kernels::cuda {
inline __nv_bfloat16* dev(ferry::bf16* p) { return reinterpret_cast<__nv_bfloat16*>(p); }
inline const __nv_bfloat16* dev(const ferry::bf16* p) { return reinterpret_cast<const __nv_bfloat16*>(p); }
struct alignas(16) Bf16x8 {
  __nv_bfloat16 v[8];
};
inline Bf16x8 load8(const __nv_bfloat16* p) { return *reinterpret_cast<const Bf16x8*>(p); }
inline void store8(__nv_bfloat16* p, const Bf16x8& x) { *reinterpret_cast<Bf16x8*>(p) = x; }
}  // namespace ferry::kernels::cuda
