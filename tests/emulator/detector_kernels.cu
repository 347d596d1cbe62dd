// tests/emulator/detector_kernels.cu — small kernels, each right or wrong in one known way, that
// detectors_emu_test.cpp runs on the emulator to check each of its detectors and models in
// isolation (the broken-variant tests do the same on ferry's real kernels). Translated and compiled
// for the emulator like kernels/cuda; never built by nvcc.
#include <cuda_runtime.h>

#include <cstdint>

#include "tests/emulator/detector_kernels.h"

namespace ferry::emu_test {

namespace {

// Lane i writes s[i]; lane i reads s[(i + 1) % 32]: ordered only by `sync`.
__global__ void neighbour_exchange_kernel(float* out, int sync) {
  __shared__ float s[64];
  const int t = threadIdx.x;
  s[t] = float(t);
  if (sync == 1) __syncwarp();
  if (sync == 2) __syncthreads();
  const int w = t / 32, lane = t % 32;
  // sync 3: read the other warp's slot after only a __syncwarp (not enough across warps).
  const int src = sync == 3 ? (1 - w) * 32 + lane : w * 32 + (lane + 1) % 32;
  if (sync == 3) __syncwarp();
  out[t] = s[src];
}

// Thread 0 reads s[5], then thread 5 overwrites it with no barrier.
__global__ void write_after_read_kernel(float* out) {
  __shared__ float s[32];
  s[threadIdx.x] = 1.0f;
  __syncthreads();
  if (threadIdx.x == 0) out[0] = s[5];
  if (threadIdx.x == 5) s[5] = 2.0f;
}

__global__ void uninitialized_kernel(float* out) {
  __shared__ float s[32];
  if (threadIdx.x < 16) s[threadIdx.x] = 1.0f;
  __syncthreads();
  out[threadIdx.x] = s[threadIdx.x];
}

__device__ __forceinline__ void copy16(void* dst, const void* src) {
  const auto addr = static_cast<uint32_t>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(addr), "l"(src), "r"(16));
}
__device__ __forceinline__ void commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// One thread, two groups of one 16-byte copy each (src[0..3] then src[4..7]); reads both back
// after waiting with `mode`: 0 = wait_group 1 then read the first only, 1 = wait_group 1 then read
// the second (still in flight), 2 = wait_group 0 then read both, 3 = no wait at all (the copy
// outlives the thread).
__global__ void async_copy_kernel(float* out, const float* src, int mode) {
  extern __shared__ __align__(16) unsigned char smem[];
  float* s = reinterpret_cast<float*>(smem);
  copy16(s, src);
  commit();
  copy16(s + 4, src + 4);
  commit();
  if (mode == 3) return;
  if (mode == 2) {
    wait<0>();
    for (int i = 0; i < 8; ++i) out[i] = s[i];
    return;
  }
  wait<1>();
  if (mode == 0)
    for (int i = 0; i < 4; ++i) out[i] = s[i];
  else
    for (int i = 0; i < 4; ++i) out[i] = s[4 + i];
  wait<0>();
}

__global__ void divergent_barrier_kernel(float* out) {
  if (threadIdx.x < 16) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1.0f;
}

// Lanes 0-15 shuffle (full mask) while lanes 16-31 wait at the block barrier: nobody can proceed.
__global__ void deadlock_kernel(float* out) {
  float v = float(threadIdx.x);
  if (threadIdx.x < 16)
    v = __shfl_xor_sync(0xffffffffu, v, 1);
  else
    __syncthreads();
  out[threadIdx.x] = v;
}

__global__ void exited_lane_kernel(float* out) {
  if (threadIdx.x == 3) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, float(threadIdx.x), 1);
}

__global__ void shuffle_kernel(int* out) {
  const int lane = threadIdx.x;
  out[lane] = __shfl_xor_sync(0xffffffffu, lane, 5);
  out[32 + lane] = __shfl_down_sync(0xffffffffu, lane, 3);
  out[64 + lane] = __shfl_up_sync(0xffffffffu, lane, 2);
  out[96 + lane] = __shfl_sync(0xffffffffu, lane, 7);
  out[128 + lane] = __shfl_xor_sync(0xffffffffu, lane, 1, 8);  // width 8 segments
}

__global__ void read_kernel(float* out, const float* in, int offset) { out[threadIdx.x] = in[threadIdx.x + offset]; }

struct alignas(16) Vec4 {
  float v[4];
};
__global__ void vector_read_kernel(float* out, const float* in) {
  const Vec4 x = *reinterpret_cast<const Vec4*>(in);
  out[0] = x.v[0] + x.v[1] + x.v[2] + x.v[3];
}

__global__ void dynamic_shared_kernel(float* out, int index) {
  extern __shared__ __align__(16) unsigned char smem[];
  float* s = reinterpret_cast<float*>(smem);
  s[index] = 1.0f;
  out[0] = s[index];
}

// Each lane reads s[lane * stride] (4-byte words; stride 0: one word for all, a broadcast), or
// with wide = 1 the 16-byte vector at s[4 * lane * stride], after a conflict-free fill.
__global__ void bank_kernel(float* out, int stride, int wide) {
  __shared__ __align__(16) float s[32 * 32 + 4 * 32];
  for (int i = threadIdx.x; i < 32 * 32 + 4 * 32; i += 32) s[i] = float(i);
  __syncthreads();
  if (wide) {
    const Vec4 v = *reinterpret_cast<const Vec4*>(&s[4 * threadIdx.x * stride]);
    out[threadIdx.x] = v.v[0] + v.v[3];
  } else {
    out[threadIdx.x] = s[threadIdx.x * stride];
  }
}

__global__ void __launch_bounds__(64) bounded_kernel(float* out) { out[threadIdx.x] = 1.0f; }

}  // namespace

void neighbour_exchange(float* out, int sync, int threads) { neighbour_exchange_kernel<<<1, threads>>>(out, sync); }
void write_after_read(float* out) { write_after_read_kernel<<<1, 32>>>(out); }
void uninitialized(float* out) { uninitialized_kernel<<<1, 32>>>(out); }
void async_copy(float* out, const float* src, int mode) { async_copy_kernel<<<1, 1, 64>>>(out, src, mode); }
void divergent_barrier(float* out) { divergent_barrier_kernel<<<1, 32>>>(out); }
void deadlock(float* out) { deadlock_kernel<<<1, 32>>>(out); }
void exited_lane(float* out) { exited_lane_kernel<<<1, 32>>>(out); }
void shuffles(int* out) { shuffle_kernel<<<1, 32>>>(out); }
void read(float* out, const float* in, int threads, int offset) { read_kernel<<<1, threads>>>(out, in, offset); }
void vector_read(float* out, const float* in) { vector_read_kernel<<<1, 1>>>(out, in); }
void dynamic_shared(float* out, int index, size_t bytes) { dynamic_shared_kernel<<<1, 1, bytes>>>(out, index); }
void bank(float* out, int stride, int wide) { bank_kernel<<<1, 32>>>(out, stride, wide); }
void launch(float* out, unsigned grid_y, unsigned threads, size_t smem) {
  dynamic_shared_kernel<<<dim3(1, grid_y), threads, smem>>>(out, 0);
}
void bounded(float* out, unsigned threads) { bounded_kernel<<<1, threads>>>(out); }
cudaError_t allow_dynamic_shared(int bytes) {
  return cudaFuncSetAttribute(reinterpret_cast<const void*>(dynamic_shared_kernel),
                              cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
}

}  // namespace ferry::emu_test
