// kernels/layernorm.h — layernorm, optionally with the residual add fused in front.
//
// Contract (N rows, C channels, eps = 1e-5):
//   residual_layernorm_forward: resid = a + b  (when b is non-null, else resid = a)
//                               out   = (resid - mean) * rstd * weight + bias
//     resid [N,C] written (may be null when b is null: the input row is a itself),
//     out [N,C], mean [N], rstd [N] written. Statistics in the accumulation type.
//   layernorm_backward: given dout [N,C] and an optional dresid [N,C] (gradient arriving at the
//     residual output from elsewhere, added in), writes
//       dinp [N,C] = dresid + d(layernorm)/d(resid) · dout
//     and accumulates dweight [C], dbias [C] (+=). dweight/dbias may be null (frozen).
//     dinp may be null (no gradient wanted below). `inp` is the row that was normalized (resid, or a when there was no residual).
#pragma once

namespace ferry::kernels::cpu {

template <typename T>
void residual_layernorm_forward(T* resid, T* out, T* mean, T* rstd, const T* a, const T* b, const T* weight,
                                const T* bias, int N, int C);

template <typename T>
void layernorm_backward(T* dinp, T* dweight, T* dbias, const T* dout, const T* dresid, const T* inp,
                        const T* weight, const T* mean, const T* rstd, int N, int C);

}  // namespace ferry::kernels::cpu

// CUDA twins: every pointer is device memory; work is queued on `stream`, never synchronized.
// cudaStream_t declared exactly as cuda_runtime.h does, so host code needs no CUDA headers.
#include <cstddef>
#include <cstdint>

#include "kernels/dtype.h"
struct CUstream_st;
typedef CUstream_st* cudaStream_t;

namespace ferry::kernels::cuda {

// bf16 rows, fp32 statistics (mean, rstd) and fp32 arithmetic; C % 8 == 0 (128-bit accesses).
// resid is the bf16-rounded a + b, and the row that is normalized is that rounded value (the one
// the backward reads back as inp).
void residual_layernorm_forward(bf16* resid, bf16* out, float* mean, float* rstd, const bf16* a, const bf16* b,
                                const bf16* weight, const bf16* bias, int N, int C, cudaStream_t stream);

// dweight/dbias accumulated (+=) deterministically: fp32 per-block partials in `workspace`
// (layernorm_backward_workspace_bytes), summed per channel in block order by a second launch.
// dinp may alias dresid.
size_t layernorm_backward_workspace_bytes(int N, int C);
void layernorm_backward(bf16* dinp, bf16* dweight, bf16* dbias, const bf16* dout, const bf16* dresid, const bf16* inp,
                        const bf16* weight, const float* mean, const float* rstd, int N, int C, void* workspace,
                        size_t workspace_bytes, cudaStream_t stream);

}  // namespace ferry::kernels::cuda
