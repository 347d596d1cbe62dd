// kernels/matmul.h — dense layer: out = inp · weightᵀ + bias.
//
// Contract (N rows, IC input channels, OC output channels; weight stored [OC, IC] row-major, the
// layout of PyTorch's nn.Linear and llm.c):
//   forward:  out[n,o] = bias[o] + sum_i inp[n,i] * weight[o,i]        out [N,OC] written; bias may be null
//   backward: dinp[n,i]   = sum_o dout[n,o] * weight[o,i]              written (null: not needed)
//             dweight[o,i] += sum_n dout[n,o] * inp[n,i]               accumulated (null: frozen)
//             dbias[o]     += sum_n dout[n,o]                          accumulated (null: none/frozen)
// Every output element is reduced by one thread in a fixed order: bitwise reproducible for any
// thread count.
#pragma once

namespace ferry::kernels::cpu {

template <typename T>
void matmul_forward(T* out, const T* inp, const T* weight, const T* bias, int N, int IC, int OC);

template <typename T>
void matmul_backward(T* dinp, T* dweight, T* dbias, const T* dout, const T* inp, const T* weight, int N, int IC,
                     int OC);

}  // namespace ferry::kernels::cpu

// CUDA twins: every pointer is device memory; work is queued on `stream`, never synchronized.
// cudaStream_t declared exactly as cuda_runtime.h does, so host code needs no CUDA headers.
#include <cstddef>
#include <cstdint>

#include "kernels/dtype.h"
struct CUstream_st;
typedef CUstream_st* cudaStream_t;

namespace ferry::kernels::cuda {

// The alignment cuBLASLt may assume for an operand at `p` with leading dimension `ld` (elements of
// `elem_bytes`): the largest power of two, at most 256, dividing both the address and the row
// pitch in bytes. Matmul hands it to cuBLASLt (CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_*_BYTES; the
// default assumes 256) and keys its algorithm cache on it.
uint32_t matmul_operand_alignment(const void* p, int64_t ld, size_t elem_bytes);

// Dense layers through cuBLASLt: bf16 in/out, fp32 accumulation, same contract and layouts as the
// CPU reference. One object per device owns the cuBLASLt handle, one workspace reused by every call
// and the bias-gradient partials (RAII: freed with the object). Not thread-safe; one stream at a time.
class Matmul {
 public:
  explicit Matmul(size_t workspace_bytes = size_t(32) << 20);
  ~Matmul();
  Matmul(const Matmul&) = delete;
  Matmul& operator=(const Matmul&) = delete;

  // out = inp·weightᵀ + bias (bias nullable). With gelu_pre non-null the GELU epilogue is fused:
  // gelu_pre [N,OC] receives the pre-activation (for the backward) and out = gelu(pre).
  void forward(bf16* out, bf16* gelu_pre, const bf16* inp, const bf16* weight, const bf16* bias, int N, int IC,
               int OC, cudaStream_t stream);

  // dinp written (nullable); dweight accumulated (nullable); dbias accumulated (nullable),
  // deterministically (per-chunk fp32 partials summed in order). With inp_gelu_pre non-null, inp was
  // gelu(inp_gelu_pre) and dinp receives the gradient with respect to the pre-activation
  // (dGELU epilogue fused into the dinp product).
  void backward(bf16* dinp, bf16* dweight, bf16* dbias, const bf16* dout, const bf16* inp, const bf16* weight,
                const bf16* inp_gelu_pre, int N, int IC, int OC, cudaStream_t stream);

 private:
  struct State;
  State* state_;
};

}  // namespace ferry::kernels::cuda
