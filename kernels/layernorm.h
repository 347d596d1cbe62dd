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
//     `inp` is the row that was normalized (resid, or a when there was no residual).
#pragma once

namespace ferry::kernels::cpu {

template <typename T>
void residual_layernorm_forward(T* resid, T* out, T* mean, T* rstd, const T* a, const T* b, const T* weight,
                                const T* bias, int N, int C);

template <typename T>
void layernorm_backward(T* dinp, T* dweight, T* dbias, const T* dout, const T* dresid, const T* inp,
                        const T* weight, const T* mean, const T* rstd, int N, int C);

}  // namespace ferry::kernels::cpu
