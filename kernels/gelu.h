// kernels/gelu.h — GELU, tanh approximation (GPT-2's):
//   gelu(x) = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
// Contract: forward out[i] = gelu(inp[i]) (n elements, written);
//           backward dinp[i] = gelu'(inp[i]) · dout[i] (written).
#pragma once
#include <cstddef>

namespace ferry::kernels::cpu {

template <typename T>
void gelu_forward(T* out, const T* inp, size_t n);

template <typename T>
void gelu_backward(T* dinp, const T* inp, const T* dout, size_t n);

}  // namespace ferry::kernels::cpu

// CUDA twins: every pointer is device memory; work is queued on `stream`, never synchronized.
// cudaStream_t declared exactly as cuda_runtime.h does, so host code needs no CUDA headers.
#include <cstddef>
#include <cstdint>

#include "kernels/dtype.h"
struct CUstream_st;
typedef CUstream_st* cudaStream_t;

namespace ferry::kernels::cuda {

// bf16 storage, fp32 arithmetic. dinp may alias dout (in place). Any n; 128-bit accesses when the
// pointers are 16-byte aligned and n % 8 == 0.
void gelu_forward(bf16* out, const bf16* inp, size_t n, cudaStream_t stream);
void gelu_backward(bf16* dinp, const bf16* inp, const bf16* dout, size_t n, cudaStream_t stream);

}  // namespace ferry::kernels::cuda
