// kernels/cuda/layernorm.cu — CUDA twin of kernels/cpu/layernorm.cpp (contract in kernels/layernorm.h).
//
// One warp per row, 128-bit accesses (8 bf16 per lane per step). Forward keeps the (residual-added,
// bf16-rounded) row in shared memory so that global memory is read once and written once: a, b in;
// resid, out out. Statistics two-pass (mean, then Σ(x-mean)²) from shared memory, in fp32.
// Backward: dweight/dbias partials per warp in shared memory (each lane owns its channels, so no
// atomics), summed over warps in order per block, written per block to the workspace and reduced
// over blocks in block order by a second launch: the same bits on every run. The partials are laid
// out k-major — channel 8·c8 + k at k·C8 + c8 — so that for each k the 32 lanes (consecutive c8)
// touch 32 consecutive words: no bank conflicts. (Channel-major, lanes 8 floats apart shared a
// bank 8 ways on every update; tests/emulator/layernorm_emu_test.cpp counts them.)
#include "kernels/cuda/common.cuh"
#include "kernels/layernorm.h"

namespace ferry::kernels::cuda {

namespace {

constexpr float kEps = 1e-5f;
constexpr int kWarps = 4;
constexpr int kRowsPerWarpBackward = 8;  // 32 rows per block: few partials to reduce, enough blocks

__global__ void __launch_bounds__(kWarps * 32)
    layernorm_forward_kernel(__nv_bfloat16* resid, __nv_bfloat16* out, float* mean, float* rstd,
                             const __nv_bfloat16* a, const __nv_bfloat16* b, const __nv_bfloat16* weight,
                             const __nv_bfloat16* bias, int N, int C) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row = blockIdx.x * kWarps + warp;
  if (row >= N) return;
  __nv_bfloat16* x_s = reinterpret_cast<__nv_bfloat16*>(smem) + size_t(warp) * C;
  const size_t base = size_t(row) * C;
  const int C8 = C / 8;

  float sum = 0.0f;
  for (int c8 = lane; c8 < C8; c8 += 32) {
    Bf16x8 x = load8_stream(a + base + 8 * c8);
    if (b) {
      const Bf16x8 y = load8_stream(b + base + 8 * c8);
#pragma unroll
      for (int k = 0; k < 8; ++k) x.v[k] = __float2bfloat16_rn(__bfloat162float(x.v[k]) + __bfloat162float(y.v[k]));
      store8(resid + base + 8 * c8, x);
    }
    store8(x_s + 8 * c8, x);
#pragma unroll
    for (int k = 0; k < 8; ++k) sum += __bfloat162float(x.v[k]);
  }
  const float m = warp_sum(sum) / C;
  float sq = 0.0f;
  for (int c8 = lane; c8 < C8; c8 += 32) {
    const Bf16x8 x = load8(x_s + 8 * c8);
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      const float d = __bfloat162float(x.v[k]) - m;
      sq += d * d;
    }
  }
  const float s = rsqrtf(warp_sum(sq) / C + kEps);
  for (int c8 = lane; c8 < C8; c8 += 32) {
    const Bf16x8 x = load8(x_s + 8 * c8);
    const Bf16x8 w = load8(weight + 8 * c8);
    const Bf16x8 bi = load8(bias + 8 * c8);
    Bf16x8 r;
#pragma unroll
    for (int k = 0; k < 8; ++k)
      r.v[k] = __float2bfloat16_rn((__bfloat162float(x.v[k]) - m) * s * __bfloat162float(w.v[k]) +
                                   __bfloat162float(bi.v[k]));
    store8(out + base + 8 * c8, r);
  }
  if (lane == 0) {
    mean[row] = m;
    rstd[row] = s;
  }
}

__global__ void __launch_bounds__(kWarps * 32)
    layernorm_backward_kernel(__nv_bfloat16* dinp, float* partials, const __nv_bfloat16* dout,
                              const __nv_bfloat16* dresid, const __nv_bfloat16* inp, const __nv_bfloat16* weight,
                              const float* mean, const float* rstd, int N, int C, bool want_params) {
  extern __shared__ __align__(16) unsigned char smem[];
  float* acc = reinterpret_cast<float*>(smem);  // [kWarps][2][C]: dweight then dbias partials, k-major
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int C8 = C / 8;
  float* dw_s = acc + size_t(warp) * 2 * C;
  float* db_s = dw_s + C;
  // Each lane zeroes exactly the entries it updates below (its c8, every k): no other lane reads
  // them before the block barrier, so no warp synchronization is needed.
  if (want_params)
    for (int c8 = lane; c8 < C8; c8 += 32)
#pragma unroll
      for (int k = 0; k < 8; ++k) dw_s[k * C8 + c8] = db_s[k * C8 + c8] = 0.0f;

  const int row0 = blockIdx.x * kWarps * kRowsPerWarpBackward + warp * kRowsPerWarpBackward;
  for (int r = 0; r < kRowsPerWarpBackward; ++r) {
    const int row = row0 + r;
    if (row >= N) break;
    const size_t base = size_t(row) * C;
    const float m = mean[row], s = rstd[row];
    float dnorm_sum = 0.0f, dnorm_norm_sum = 0.0f;
    for (int c8 = lane; c8 < C8; c8 += 32) {
      const Bf16x8 g = load8(dout + base + 8 * c8);
      const Bf16x8 x = load8(inp + base + 8 * c8);
      const Bf16x8 w = load8(weight + 8 * c8);
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        const float gk = __bfloat162float(g.v[k]);
        const float norm = (__bfloat162float(x.v[k]) - m) * s;
        const float dnorm = __bfloat162float(w.v[k]) * gk;
        dnorm_sum += dnorm;
        dnorm_norm_sum += dnorm * norm;
        if (want_params) {
          dw_s[k * C8 + c8] += norm * gk;
          db_s[k * C8 + c8] += gk;
        }
      }
    }
    if (!dinp) continue;
    const float dnorm_mean = warp_sum(dnorm_sum) / C;
    const float dnorm_norm_mean = warp_sum(dnorm_norm_sum) / C;
    for (int c8 = lane; c8 < C8; c8 += 32) {
      const Bf16x8 g = load8(dout + base + 8 * c8);
      const Bf16x8 x = load8(inp + base + 8 * c8);
      const Bf16x8 w = load8(weight + 8 * c8);
      Bf16x8 dr{};
      if (dresid) dr = load8(dresid + base + 8 * c8);
      Bf16x8 res;
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        const float norm = (__bfloat162float(x.v[k]) - m) * s;
        const float dnorm = __bfloat162float(w.v[k]) * __bfloat162float(g.v[k]);
        float d = (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
        if (dresid) d += __bfloat162float(dr.v[k]);
        res.v[k] = __float2bfloat16_rn(d);
      }
      store8(dinp + base + 8 * c8, res);
    }
  }
  if (!want_params) return;
  __syncthreads();
  // Fixed order over warps, one thread per entry (in the k-major layout, kept in the workspace):
  // the block's partial.
  float* out = partials + size_t(blockIdx.x) * 2 * C;
  for (int c = threadIdx.x; c < 2 * C; c += blockDim.x) {
    float sum = 0.0f;
    for (int w = 0; w < kWarps; ++w) sum += acc[size_t(w) * 2 * C + c];
    out[c] = sum;
  }
}

// Σ of the per-block partials, the same tree every run: thread (x, y) of a 32×16 block sums the
// partials y, y+16, y+32, … of column c (dweight columns first, then dbias, each k-major), the 16
// sums are added in y order, and the total goes += into the bf16 gradient of channel 8·c8 + k.
// Sixteen independent chains instead of one keep the latency of ~500 sequential loads off the
// critical path.
constexpr int kReduceColumns = 32, kReduceChains = 16;

__global__ void __launch_bounds__(kReduceColumns * kReduceChains)
    layernorm_params_reduce_kernel(__nv_bfloat16* dweight, __nv_bfloat16* dbias, const float* partials, int blocks,
                                   int C) {
  __shared__ float sums[kReduceChains][kReduceColumns];
  const int c = blockIdx.x * kReduceColumns + threadIdx.x;  // in [0, 2C)
  float s = 0.0f;
  if (c < 2 * C) {
#pragma unroll 8
    for (int k = threadIdx.y; k < blocks; k += kReduceChains) s += partials[size_t(k) * 2 * C + c];
  }
  sums[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y != 0 || c >= 2 * C) return;
  float total = 0.0f;
  for (int y = 0; y < kReduceChains; ++y) total += sums[y][threadIdx.x];
  const int C8 = C / 8, j = c < C ? c : c - C;
  const int channel = 8 * (j % C8) + j / C8;
  __nv_bfloat16* g = c < C ? (dweight ? dweight + channel : nullptr) : (dbias ? dbias + channel : nullptr);
  if (g) *g = __float2bfloat16_rn(__bfloat162float(*g) + total);
}

int backward_blocks(int N) { return static_cast<int>(ceil_div(N, kWarps * kRowsPerWarpBackward)); }

void set_smem(const void* kernel, size_t bytes) {
  if (bytes > 48 * 1024)
    FERRY_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
}

}  // namespace

void residual_layernorm_forward(bf16* resid, bf16* out, float* mean, float* rstd, const bf16* a, const bf16* b,
                                const bf16* weight, const bf16* bias, int N, int C, cudaStream_t stream) {
  FERRY_CUDA_REQUIRE(C % 8 == 0 && C > 0, "C=" + std::to_string(C));
  FERRY_CUDA_REQUIRE(!b || resid, "resid must be given when b is");
  if (N == 0) return;
  const size_t smem = size_t(kWarps) * C * sizeof(__nv_bfloat16);
  set_smem(reinterpret_cast<const void*>(layernorm_forward_kernel), smem);
  layernorm_forward_kernel<<<ceil_div(N, kWarps), kWarps * 32, smem, stream>>>(
      dev(resid), dev(out), mean, rstd, dev(a), dev(b), dev(weight), dev(bias), N, C);
  FERRY_CUDA_CHECK_LAUNCH("layernorm_forward_kernel");
}

size_t layernorm_backward_workspace_bytes(int N, int C) {
  return size_t(backward_blocks(N)) * 2 * C * sizeof(float);
}

void layernorm_backward(bf16* dinp, bf16* dweight, bf16* dbias, const bf16* dout, const bf16* dresid, const bf16* inp,
                        const bf16* weight, const float* mean, const float* rstd, int N, int C, void* workspace,
                        size_t workspace_bytes, cudaStream_t stream) {
  FERRY_CUDA_REQUIRE(C % 8 == 0 && C > 0, "C=" + std::to_string(C));
  if (N == 0) return;
  const bool want_params = dweight || dbias;
  if (!want_params && !dinp) return;
  if (want_params)
    FERRY_CUDA_REQUIRE(workspace_bytes >= layernorm_backward_workspace_bytes(N, C), "workspace too small");
  const int blocks = backward_blocks(N);
  const size_t smem = want_params ? size_t(kWarps) * 2 * C * sizeof(float) : 0;
  set_smem(reinterpret_cast<const void*>(layernorm_backward_kernel), smem);
  layernorm_backward_kernel<<<blocks, kWarps * 32, smem, stream>>>(dev(dinp), static_cast<float*>(workspace),
                                                                   dev(dout), dev(dresid), dev(inp), dev(weight), mean,
                                                                   rstd, N, C, want_params);
  FERRY_CUDA_CHECK_LAUNCH("layernorm_backward_kernel");
  if (!want_params) return;
  layernorm_params_reduce_kernel<<<ceil_div(2 * size_t(C), kReduceColumns), dim3(kReduceColumns, kReduceChains), 0,
                                   stream>>>(dev(dweight), dev(dbias), static_cast<const float*>(workspace), blocks, C);
  FERRY_CUDA_CHECK_LAUNCH("layernorm_params_reduce_kernel");
}

}  // namespace ferry::kernels::cuda
