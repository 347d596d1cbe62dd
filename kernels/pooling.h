// kernels/pooling.h — what fine-tuning graphs need besides the GPT ops (engine/ops/pooling.cpp
// defines the ops): one vector per sequence out of a padded batch, a constant multiplier (LoRA's
// update path) and the weighted sum of several losses (multi-task training).
// Contract:
//   pool_tokens_forward:  y[b,c] = w_b · Σ_{t ∈ span_b} x[b,t,c]          x [B,T,C] → y [B,C], written
//   pool_tokens_backward: dx[b,t,c] = t ∈ span_b ? w_b · dy[b,c] : 0        dy [B,C] → dx [B,T,C], every
//                         element written (zeros at the positions the row does not pool)
//     with len = clamp(lengths[b], 1, T) and, by mode: first span [0,1), w 1; last [len−1, len), w 1
//     (GPT's summary token); mean [0, len), w 1/len. Padding sits at the end of each row, so a row
//     reads only its real tokens and what padding a batch holds never changes its pooled vector.
//   scale:        y[i] = s · x[i]                                           (y may alias x)
//   weighted_sum: out = Σ_k w_k · term_k, summed in k order                 (the multi-task loss)
#pragma once
#include <cstddef>
#include <cstdint>

namespace ferry::kernels {

enum PoolMode { kPoolFirst = 0, kPoolLast = 1, kPoolMean = 2 };

}  // namespace ferry::kernels

namespace ferry::kernels::cpu {

// T is float or double; the mean is summed in T in position order, then multiplied by 1/len.
template <typename T>
void pool_tokens_forward(T* y, const T* x, const int32_t* lengths, int B, int Tn, int C, int mode);
template <typename T>
void pool_tokens_backward(T* dx, const T* dy, const int32_t* lengths, int B, int Tn, int C, int mode);
template <typename T>
void scale(T* y, const T* x, T s, size_t n);

}  // namespace ferry::kernels::cpu

// CUDA twins: every pointer is device memory unless said otherwise; work is queued on `stream`,
// never synchronized. cudaStream_t declared exactly as cuda_runtime.h does, so host code needs no
// CUDA headers.
#include "kernels/dtype.h"
struct CUstream_st;
typedef CUstream_st* cudaStream_t;

namespace ferry::kernels::cuda {

// bf16 storage, fp32 sums. One thread per output element, the positions summed in order: no
// atomics, bitwise reproducible. lengths is i32 [B] on the device.
void pool_tokens_forward(bf16* y, const bf16* x, const int32_t* lengths, int B, int Tn, int C, int mode,
                         cudaStream_t stream);
void pool_tokens_backward(bf16* dx, const bf16* dy, const int32_t* lengths, int B, int Tn, int C, int mode,
                          cudaStream_t stream);
// bf16: fp32 product rounded once; fp32 as is. y may alias x.
void scale(bf16* y, const bf16* x, float s, size_t n, cudaStream_t stream);
void scale(float* y, const float* x, float s, size_t n, cudaStream_t stream);

// The terms are fp32 device scalars (cross_entropy's mean losses); `terms` and `weights` are host
// arrays of n ≤ kMaxWeightedTerms, copied into the launch (so a captured CUDA graph keeps them).
// One thread sums in fp64 in k order, as the CPU op does.
constexpr int kMaxWeightedTerms = 16;
void weighted_sum(float* out, const float* const* terms, const double* weights, int n, cudaStream_t stream);

}  // namespace ferry::kernels::cuda
