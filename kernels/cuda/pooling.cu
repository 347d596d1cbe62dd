// kernels/cuda/pooling.cu — CUDA twins of kernels/cpu/pooling.cpp (pool_tokens and its backward,
// scale) and the weighted loss sum, for the fine-tuning graphs. Small and memory-bound: one thread
// per output element, every sum in a fixed order (no atomics), so results are bitwise reproducible.
#include "kernels/cuda/common.cuh"
#include "kernels/pooling.h"

namespace ferry::kernels::cuda {

namespace {

constexpr int kThreads = 256;

struct Span {
  int begin, end;
  float weight;
};

// kernels/pooling.h's span of row b: clamp the length into [1, T], then first, last or all.
__device__ __forceinline__ Span pooled_span(int mode, int length, int Tn) {
  const int len = min(max(length, 1), Tn);
  if (mode == kPoolFirst) return {0, 1, 1.0f};
  if (mode == kPoolLast) return {len - 1, len, 1.0f};
  return {0, len, 1.0f / static_cast<float>(len)};
}

// Block (x: channel chunk, y: row b); thread c sums its channel over the row's span in position
// order: neighbouring threads read neighbouring channels (coalesced).
__global__ void pool_tokens_forward_kernel(__nv_bfloat16* y, const __nv_bfloat16* x, const int32_t* lengths, int Tn,
                                           int C, int mode) {
  const int b = blockIdx.y;
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const Span s = pooled_span(mode, lengths[b], Tn);
  float acc = 0.0f;
  for (int t = s.begin; t < s.end; ++t) acc += __bfloat162float(x[(size_t(b) * Tn + t) * C + c]);
  y[size_t(b) * C + c] = __float2bfloat16_rn(acc * s.weight);
}

// Grid-stride over every element of dx: the pooled positions get w·dy, the others 0.
__global__ void pool_tokens_backward_kernel(__nv_bfloat16* dx, const __nv_bfloat16* dy, const int32_t* lengths,
                                            int B, int Tn, int C, int mode) {
  const size_t n = size_t(B) * Tn * C;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const int c = int(i % C);
    const size_t bt = i / C;
    const int t = int(bt % Tn), b = int(bt / Tn);
    const Span s = pooled_span(mode, lengths[b], Tn);
    const bool in = t >= s.begin && t < s.end;
    dx[i] = __float2bfloat16_rn(in ? __bfloat162float(dy[size_t(b) * C + c]) * s.weight : 0.0f);
  }
}

__global__ void scale_bf16_kernel(__nv_bfloat16* y, const __nv_bfloat16* x, float s, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    y[i] = __float2bfloat16_rn(s * __bfloat162float(x[i]));
}

__global__ void scale_f32_kernel(float* y, const float* x, float s, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    y[i] = s * x[i];
}

// Passed by value: a captured CUDA graph keeps the pointers and weights in its launch parameters.
struct WeightedTerms {
  const float* term[kMaxWeightedTerms];
  double weight[kMaxWeightedTerms];
  int n;
};

// One thread, fp64, k order: the CPU op's arithmetic exactly.
__global__ void weighted_sum_kernel(float* out, WeightedTerms w) {
  double total = 0.0;
  for (int k = 0; k < w.n; ++k) total += w.weight[k] * static_cast<double>(*w.term[k]);
  *out = static_cast<float>(total);
}

}  // namespace

namespace {

// Enough blocks to fill any current GPU several times over; grid-stride covers the rest.
unsigned stride_blocks(size_t n) { return std::min<unsigned>(ceil_div(n, kThreads), 132 * 16); }

}  // namespace

void pool_tokens_forward(bf16* y, const bf16* x, const int32_t* lengths, int B, int Tn, int C, int mode,
                         cudaStream_t stream) {
  FERRY_CUDA_REQUIRE(B >= 0 && B <= 65535 && Tn > 0 && C >= 0, "B=" + std::to_string(B) + " T=" + std::to_string(Tn));
  FERRY_CUDA_REQUIRE(mode >= kPoolFirst && mode <= kPoolMean, "mode=" + std::to_string(mode));
  if (B == 0 || C == 0) return;
  pool_tokens_forward_kernel<<<dim3(ceil_div(C, kThreads), B), kThreads, 0, stream>>>(dev(y), dev(x), lengths, Tn, C,
                                                                                     mode);
  FERRY_CUDA_CHECK_LAUNCH("pool_tokens_forward_kernel");
}

void pool_tokens_backward(bf16* dx, const bf16* dy, const int32_t* lengths, int B, int Tn, int C, int mode,
                          cudaStream_t stream) {
  FERRY_CUDA_REQUIRE(B >= 0 && Tn > 0 && C >= 0, "B=" + std::to_string(B) + " T=" + std::to_string(Tn));
  FERRY_CUDA_REQUIRE(mode >= kPoolFirst && mode <= kPoolMean, "mode=" + std::to_string(mode));
  const size_t n = size_t(B) * Tn * C;
  if (n == 0) return;
  pool_tokens_backward_kernel<<<stride_blocks(n), kThreads, 0, stream>>>(dev(dx), dev(dy), lengths, B, Tn, C, mode);
  FERRY_CUDA_CHECK_LAUNCH("pool_tokens_backward_kernel");
}

void scale(bf16* y, const bf16* x, float s, size_t n, cudaStream_t stream) {
  if (n == 0) return;
  scale_bf16_kernel<<<stride_blocks(n), kThreads, 0, stream>>>(dev(y), dev(x), s, n);
  FERRY_CUDA_CHECK_LAUNCH("scale_bf16_kernel");
}

void scale(float* y, const float* x, float s, size_t n, cudaStream_t stream) {
  if (n == 0) return;
  scale_f32_kernel<<<stride_blocks(n), kThreads, 0, stream>>>(y, x, s, n);
  FERRY_CUDA_CHECK_LAUNCH("scale_f32_kernel");
}

void weighted_sum(float* out, const float* const* terms, const double* weights, int n, cudaStream_t stream) {
  FERRY_CUDA_REQUIRE(n >= 1 && n <= kMaxWeightedTerms,
                     "n=" + std::to_string(n) + " (at most " + std::to_string(kMaxWeightedTerms) + " terms)");
  WeightedTerms w{};
  for (int k = 0; k < n; ++k) {
    w.term[k] = terms[k];
    w.weight[k] = weights[k];
  }
  w.n = n;
  weighted_sum_kernel<<<1, 1, 0, stream>>>(out, w);
  FERRY_CUDA_CHECK_LAUNCH("weighted_sum_kernel");
}

}  // namespace ferry::kernels::cuda
