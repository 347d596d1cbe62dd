// kernels/cuda/adamw.cu — CUDA twin of kernels/cpu/adamw.cpp (contract in kernels/adamw.h): AdamW
// over the flat buffers in one launch, and the deterministic global gradient norm with its clip
// scale written on the device (whole, or a rank's share over ranges: kernels/adamw_norm_share.h).
//
// AdamW is pure streaming (per element: read master, m, v, grad; write master, m, v, bf16 param —
// 28 bytes with bf16 grads), so the kernel does 4 elements per thread with 128-bit fp32 accesses and
// looks up its segment (lr scale, weight decay) by binary search in the small table (L1-resident).
#include "kernels/adamw.h"
#include "kernels/adamw_norm_share.h"
#include "kernels/cuda/common.cuh"

namespace ferry::kernels::cuda {

namespace {

constexpr int kThreads = 256;
// The norm's grid is a constant, not derived from the device, so the summation tree — and hence the
// bits of the result — are the same on every card.
constexpr int kNormBlocks = 1024;
constexpr int kNormThreads = 256;

template <typename G>
__device__ __forceinline__ float grad_at(const G* g, size_t i);
template <>
__device__ __forceinline__ float grad_at<float>(const float* g, size_t i) { return g[i]; }
template <>
__device__ __forceinline__ float grad_at<bf16>(const bf16* g, size_t i) {
  return __bfloat162float(reinterpret_cast<const __nv_bfloat16*>(g)[i]);
}

__device__ __forceinline__ int find_segment(const AdamWSegment* seg, int n_seg, size_t i) {
  int lo = 0, hi = n_seg - 1;  // last segment with begin <= i
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (seg[mid].begin <= i) lo = mid; else hi = mid - 1;
  }
  return lo;
}

template <typename G>
__global__ void adamw_kernel(float* master, __nv_bfloat16* params, float* m, float* v, const G* grads, size_t n,
                             const AdamWSegment* segments, int n_segments, const AdamWStep* step_values, float beta1,
                             float beta2, float eps, const float* grad_scale) {
  const AdamWStep sv = *step_values;
  const float scale = grad_scale ? *grad_scale : 1.0f;
  const float bc1 = 1.0f - powf(beta1, static_cast<float>(sv.step));
  const float bc2 = 1.0f - powf(beta2, static_cast<float>(sv.step));
  const size_t stride = size_t(gridDim.x) * blockDim.x * 4;
  for (size_t i0 = (blockIdx.x * size_t(blockDim.x) + threadIdx.x) * 4; i0 < n; i0 += stride) {
    const bool full = i0 + 4 <= n;
    // Elements of one pack can straddle a segment boundary: look up per element only then.
    const int s0 = find_segment(segments, n_segments, i0);
    const int s3 = find_segment(segments, n_segments, full ? i0 + 3 : n - 1);
    float p4[4], m4[4], v4[4];
    if (full) {
      *reinterpret_cast<float4*>(p4) = *reinterpret_cast<const float4*>(master + i0);
      *reinterpret_cast<float4*>(m4) = *reinterpret_cast<const float4*>(m + i0);
      *reinterpret_cast<float4*>(v4) = *reinterpret_cast<const float4*>(v + i0);
    } else {
      for (int k = 0; k < 4; ++k)
        if (i0 + k < n) p4[k] = master[i0 + k], m4[k] = m[i0 + k], v4[k] = v[i0 + k];
    }
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const size_t i = i0 + k;
      if (i >= n) break;
      const int s = s0 == s3 ? s0 : find_segment(segments, n_segments, i);
      if (segments[s].lr_scale == 0.0f) continue;  // frozen: master, m and v written back as read
      const float lr = sv.lr * segments[s].lr_scale;
      const float wd = segments[s].weight_decay;
      const float g = grad_at(grads, i) * scale;
      const float mi = beta1 * m4[k] + (1.0f - beta1) * g;
      const float vi = beta2 * v4[k] + (1.0f - beta2) * g * g;
      m4[k] = mi;
      v4[k] = vi;
      const float mhat = mi / bc1;
      const float vhat = vi / bc2;
      p4[k] -= lr * (mhat / (sqrtf(vhat) + eps) + wd * p4[k]);
    }
    if (full) {
      *reinterpret_cast<float4*>(master + i0) = *reinterpret_cast<const float4*>(p4);
      *reinterpret_cast<float4*>(m + i0) = *reinterpret_cast<const float4*>(m4);
      *reinterpret_cast<float4*>(v + i0) = *reinterpret_cast<const float4*>(v4);
      if (params) {
        __nv_bfloat162 lo = __floats2bfloat162_rn(p4[0], p4[1]);
        __nv_bfloat162 hi = __floats2bfloat162_rn(p4[2], p4[3]);
        uint2 packed;
        packed.x = *reinterpret_cast<uint32_t*>(&lo);
        packed.y = *reinterpret_cast<uint32_t*>(&hi);
        *reinterpret_cast<uint2*>(params + i0) = packed;
      }
    } else {
      for (int k = 0; k < 4; ++k)
        if (i0 + k < n) {
          master[i0 + k] = p4[k], m[i0 + k] = m4[k], v[i0 + k] = v4[k];
          if (params) params[i0 + k] = __float2bfloat16_rn(p4[k]);
        }
    }
  }
}

// 16-byte loads (8 bf16 or 4 fp32 per access) so that enough bytes are in flight to approach the
// copy bandwidth; the ragged tail (and a misaligned buffer) goes element by element. The order of
// the additions depends only on n and the constant grid, never on timing.
template <typename G>
__global__ void __launch_bounds__(kNormThreads)
    grad_norm_partial_kernel(double* partials, const G* grads, size_t n, bool vectorized) {
  __shared__ double scratch[32];
  constexpr int kVec = 16 / sizeof(G);
  const size_t thread = blockIdx.x * size_t(blockDim.x) + threadIdx.x, threads = size_t(gridDim.x) * blockDim.x;
  const size_t n_vec = vectorized ? n / kVec : 0;
  float s = 0.0f;
  for (size_t i = thread; i < n_vec; i += threads) {
    const int4 raw = __ldcs(reinterpret_cast<const int4*>(grads) + i);
    const G* g = reinterpret_cast<const G*>(&raw);
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      const float x = grad_at(g, k);
      s += x * x;
    }
  }
  for (size_t i = n_vec * kVec + thread; i < n; i += threads) {
    const float g = grad_at(grads, i);
    s += g * g;
  }
  const double total = block_sum(static_cast<double>(s), scratch);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

__global__ void grad_norm_final_kernel(float* norm, float* clip_scale, const double* partials, int blocks,
                                       float max_norm) {
  __shared__ double scratch[32];
  double s = 0.0;
  for (int i = threadIdx.x; i < blocks; i += blockDim.x) s += partials[i];
  const double total = block_sum(s, scratch);
  if (threadIdx.x == 0) {
    const float nrm = static_cast<float>(sqrt(total));
    *norm = nrm;
    if (clip_scale) *clip_scale = (max_norm > 0.0f && nrm > max_norm) ? max_norm / (nrm + 1e-6f) : 1.0f;
  }
}

// The ranges' share: each thread strides over every range in turn (the ranges of a segment table
// are few and long), fp32 per-thread sums, fp64 block partials as above.
template <typename G>
__global__ void __launch_bounds__(kNormThreads)
    grad_norm_ranges_partial_kernel(double* partials, const G* grads, const NormRange* ranges, int n_ranges) {
  __shared__ double scratch[32];
  const size_t thread = blockIdx.x * size_t(blockDim.x) + threadIdx.x, threads = size_t(gridDim.x) * blockDim.x;
  float s = 0.0f;
  for (int r = 0; r < n_ranges; ++r) {
    const NormRange range = ranges[r];
    for (size_t i = range.begin + thread; i < range.end; i += threads) {
      const float g = grad_at(grads, i);
      s += g * g;
    }
  }
  const double total = block_sum(static_cast<double>(s), scratch);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

__global__ void sum_partials_kernel(double* out, const double* partials, int blocks) {
  __shared__ double scratch[32];
  double s = 0.0;
  for (int i = threadIdx.x; i < blocks; i += blockDim.x) s += partials[i];
  const double total = block_sum(s, scratch);
  if (threadIdx.x == 0) *out = total;
}

__global__ void grad_norm_finish_kernel(float* norm, float* clip_scale, const double* sum_squares, float max_norm) {
  const float nrm = static_cast<float>(sqrt(*sum_squares));
  *norm = nrm;
  if (clip_scale) *clip_scale = (max_norm > 0.0f && nrm > max_norm) ? max_norm / (nrm + 1e-6f) : 1.0f;
}

}  // namespace

template <typename G>
void grad_norm_squared(double* sum_squares, const G* grads, const NormRange* ranges, int n_ranges, void* workspace,
                       size_t workspace_bytes, cudaStream_t stream) {
  FERRY_CUDA_REQUIRE(workspace_bytes >= grad_norm_workspace_bytes(), "workspace too small");
  FERRY_CUDA_REQUIRE(n_ranges >= 0 && (n_ranges == 0 || ranges), "a range table");
  double* partials = static_cast<double*>(workspace);
  grad_norm_ranges_partial_kernel<G><<<kNormBlocks, kNormThreads, 0, stream>>>(partials, grads, ranges, n_ranges);
  FERRY_CUDA_CHECK_LAUNCH("grad_norm_ranges_partial_kernel");
  sum_partials_kernel<<<1, 1024, 0, stream>>>(sum_squares, partials, kNormBlocks);
  FERRY_CUDA_CHECK_LAUNCH("sum_partials_kernel");
}

void grad_norm_finish(float* norm, float* clip_scale, const double* sum_squares, float max_norm, cudaStream_t stream) {
  grad_norm_finish_kernel<<<1, 1, 0, stream>>>(norm, clip_scale, sum_squares, max_norm);
  FERRY_CUDA_CHECK_LAUNCH("grad_norm_finish_kernel");
}

template <typename G>
void adamw_update(float* master, bf16* params, float* m, float* v, const G* grads, size_t n,
                  const AdamWSegment* segments, int n_segments, const AdamWStep* step_values, float beta1,
                  float beta2, float eps, const float* grad_scale, cudaStream_t stream) {
  FERRY_CUDA_REQUIRE(n_segments >= 1 && segments && step_values, "a segment table and step values");
  FERRY_CUDA_REQUIRE((reinterpret_cast<uintptr_t>(master) | reinterpret_cast<uintptr_t>(m) |
                      reinterpret_cast<uintptr_t>(v)) % 16 == 0 &&
                         reinterpret_cast<uintptr_t>(params) % 8 == 0,
                     "16-byte aligned fp32 buffers, 8-byte aligned bf16 params");
  if (n == 0) return;
  const unsigned blocks = std::min<unsigned>(ceil_div(ceil_div(n, 4), kThreads), 132 * 8);
  adamw_kernel<G><<<blocks, kThreads, 0, stream>>>(master, dev(params), m, v, grads, n, segments, n_segments,
                                                   step_values, beta1, beta2, eps, grad_scale);
  FERRY_CUDA_CHECK_LAUNCH("adamw_kernel");
}

size_t grad_norm_workspace_bytes() { return kNormBlocks * sizeof(double); }

template <typename G>
void grad_norm(float* norm, float* clip_scale, const G* grads, size_t n, float max_norm, void* workspace,
               size_t workspace_bytes, cudaStream_t stream) {
  FERRY_CUDA_REQUIRE(workspace_bytes >= grad_norm_workspace_bytes(), "workspace too small");
  double* partials = static_cast<double*>(workspace);
  const bool vectorized = reinterpret_cast<uintptr_t>(grads) % 16 == 0;
  grad_norm_partial_kernel<G><<<kNormBlocks, kNormThreads, 0, stream>>>(partials, grads, n, vectorized);
  FERRY_CUDA_CHECK_LAUNCH("grad_norm_partial_kernel");
  grad_norm_final_kernel<<<1, 1024, 0, stream>>>(norm, clip_scale, partials, kNormBlocks, max_norm);
  FERRY_CUDA_CHECK_LAUNCH("grad_norm_final_kernel");
}

template void adamw_update<bf16>(float*, bf16*, float*, float*, const bf16*, size_t, const AdamWSegment*, int,
                                 const AdamWStep*, float, float, float, const float*, cudaStream_t);
template void adamw_update<float>(float*, bf16*, float*, float*, const float*, size_t, const AdamWSegment*, int,
                                  const AdamWStep*, float, float, float, const float*, cudaStream_t);
template void grad_norm<bf16>(float*, float*, const bf16*, size_t, float, void*, size_t, cudaStream_t);
template void grad_norm<float>(float*, float*, const float*, size_t, float, void*, size_t, cudaStream_t);
template void grad_norm_squared<bf16>(double*, const bf16*, const NormRange*, int, void*, size_t, cudaStream_t);
template void grad_norm_squared<float>(double*, const float*, const NormRange*, int, void*, size_t, cudaStream_t);

}  // namespace ferry::kernels::cuda
