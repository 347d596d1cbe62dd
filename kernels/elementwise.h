// kernels/elementwise.h — small helpers the graph needs between the big ops.
// Contract: add: out[i] = a[i] + b[i] (out may alias a or b).
#pragma once
#include <cstddef>

namespace ferry::kernels::cpu {

template <typename T>
void add(T* out, const T* a, const T* b, size_t n);

}  // namespace ferry::kernels::cpu

// CUDA twins: every pointer is device memory; work is queued on `stream`, never synchronized.
// cudaStream_t declared exactly as cuda_runtime.h does, so host code needs no CUDA headers.
#include <cstddef>
#include <cstdint>

#include "kernels/dtype.h"
struct CUstream_st;
typedef CUstream_st* cudaStream_t;

namespace ferry::kernels::cuda {

void add(bf16* out, const bf16* a, const bf16* b, size_t n, cudaStream_t stream);
void add(float* out, const float* a, const float* b, size_t n, cudaStream_t stream);

}  // namespace ferry::kernels::cuda
