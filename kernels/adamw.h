// kernels/adamw.h — AdamW over a flat range of parameters, and the global gradient norm.
//
// Contract (n elements, step t ≥ 1, decoupled weight decay as in Loshchilov & Hutter):
//   g  = grads[i] · grad_scale                      (grad_scale carries clipping)
//   m  = β1·m + (1-β1)·g ;  v = β2·v + (1-β2)·g²
//   p -= lr · ( m/(1-β1ᵗ) / (√(v/(1-β2ᵗ)) + eps) + weight_decay · p )
// params, m, v updated in place; grads read.
//   grad_norm_squared: Σ g² over n elements, accumulated in double in a fixed order.
#pragma once
#include <cstddef>

namespace ferry::kernels {

// One run of a flat parameter buffer sharing an lr multiplier and a weight decay (e.g. no decay for
// biases and layernorm gains, layer-wise learning rates). A table of these is sorted by begin and
// covers a range of the buffer: segment i spans [begin_i, begin_{i+1}). lr_scale 0 marks a frozen
// run: its parameters and moments are left exactly as they are (the moments do not decay). The one
// segment type of the host optimizer (engine/optim/adamw.h) and of the CUDA kernel below.
struct AdamWSegment {
  size_t begin;
  float lr_scale;
  float weight_decay;
};

}  // namespace ferry::kernels

namespace ferry::kernels::cpu {

struct AdamWHyper {
  float lr;
  float beta1;
  float beta2;
  float eps;
  float weight_decay;
  int step;
  float grad_scale;
};

void adamw_update(float* params, float* m, float* v, const float* grads, size_t n, const AdamWHyper& h);

template <typename T>
double grad_norm_squared(const T* grads, size_t n);

}  // namespace ferry::kernels::cpu

// CUDA twins: every pointer is device memory; work is queued on `stream`, never synchronized.
// cudaStream_t declared exactly as cuda_runtime.h does, so host code needs no CUDA headers.
#include <cstddef>
#include <cstdint>

#include "kernels/dtype.h"
struct CUstream_st;
typedef CUstream_st* cudaStream_t;

namespace ferry::kernels::cuda {

// The segment table (kernels::AdamWSegment above), covering [0, n), lives in device memory.
using ferry::kernels::AdamWSegment;

// The values that change every step, read from device memory so that a captured CUDA graph can be
// replayed unchanged (the engine updates them with a device write before each replay).
struct AdamWStep {
  float lr;
  int step;  // ≥ 1
};

// One launch over the whole flat buffer: fp32 master, m, v updated in place; the bf16 working copy
// `params` written from the new master in the same pass (nullable). grads bf16 or fp32.
// grad_scale (device, nullable = 1) multiplies every gradient: clipping without a host round trip.
// Same arithmetic as the CPU contract with lr → lr·lr_scale, weight_decay → segment's; elements of
// a frozen segment (lr_scale 0) keep master, m and v as they were.
template <typename G>
void adamw_update(float* master, bf16* params, float* m, float* v, const G* grads, size_t n,
                  const AdamWSegment* segments, int n_segments, const AdamWStep* step_values, float beta1,
                  float beta2, float eps, const float* grad_scale, cudaStream_t stream);

// Deterministic global norm: a fixed grid (independent of the device) of fp32 per-thread sums,
// fp64 per-block partials in workspace, one block summing them in order. Writes *norm = √Σg² and,
// when clip_scale is non-null, *clip_scale = max_norm / (norm + 1e-6) if max_norm > 0 and
// norm > max_norm, else 1 (the grad_scale that adamw_update reads).
size_t grad_norm_workspace_bytes();
template <typename G>
void grad_norm(float* norm, float* clip_scale, const G* grads, size_t n, float max_norm, void* workspace,
               size_t workspace_bytes, cudaStream_t stream);

}  // namespace ferry::kernels::cuda
