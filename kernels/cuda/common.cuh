// kernels/cuda/common.cuh — what every CUDA kernel file shares: the bf16 view of ferry::bf16,
// 128-bit packs, warp and block reductions in a fixed order (determinism), launch arithmetic.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/cuda_check.h"
#include "kernels/dtype.h"

namespace ferry::kernels::cuda {

static_assert(sizeof(__nv_bfloat16) == sizeof(ferry::bf16));

inline __nv_bfloat16* dev(ferry::bf16* p) { return reinterpret_cast<__nv_bfloat16*>(p); }
inline const __nv_bfloat16* dev(const ferry::bf16* p) { return reinterpret_cast<const __nv_bfloat16*>(p); }

inline unsigned ceil_div(size_t a, size_t b) { return static_cast<unsigned>((a + b - 1) / b); }

// Eight bf16 in one 16-byte access: the width the memory system serves best.
struct alignas(16) Bf16x8 {
  __nv_bfloat16 v[8];
};

__device__ __forceinline__ Bf16x8 load8(const __nv_bfloat16* p) { return *reinterpret_cast<const Bf16x8*>(p); }
// Streaming load for data read once (bypasses L1 allocation).
__device__ __forceinline__ Bf16x8 load8_stream(const __nv_bfloat16* p) {
  const int4 r = __ldcs(reinterpret_cast<const int4*>(p));
  return *reinterpret_cast<const Bf16x8*>(&r);
}
__device__ __forceinline__ void store8(__nv_bfloat16* p, const Bf16x8& x) { *reinterpret_cast<Bf16x8*>(p) = x; }

__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}
__device__ __forceinline__ double warp_sum(double x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}
__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}

// Block-wide sum, same tree every call (the shuffle pattern and warp order are fixed), result in
// every thread. `scratch` holds 32 values; blockDim.x must be a multiple of 32.
template <typename T>
__device__ __forceinline__ T block_sum(T x, T* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  x = warp_sum(x);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = x;
  __syncthreads();
  T r = lane < warps ? scratch[lane] : T(0);
  return warp_sum(r);
}

__device__ __forceinline__ float block_max(float x, float* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  x = warp_max(x);
  __syncthreads();
  if (lane == 0) scratch[warp] = x;
  __syncthreads();
  float r = lane < warps ? scratch[lane] : -INFINITY;
  return warp_max(r);
}

}  // namespace ferry::kernels::cuda
