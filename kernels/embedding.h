// kernels/embedding.h — token + position embedding.
//
// Contract (B batch rows, T positions, C channels, V vocabulary):
//   forward:  out[b,t,:] = wte[tokens[b,t], :] + wpe[t, :]          out [B,T,C] written
//   backward: dwte[tokens[b,t], :] += dout[b,t,:]                     dwte [V,C] accumulated
//             dwpe[t, :]           += sum_b dout[b,t,:]               dwpe [maxT,C] accumulated
// Token ids must lie in [0, V); the caller (data loader) guarantees it. Summation order is fixed
// (b, then t ascending) so that the result is bitwise reproducible.
#pragma once
#include <cstdint>

namespace ferry::kernels::cpu {

template <typename T>
void embedding_forward(T* out, const int32_t* tokens, const T* wte, const T* wpe, int B, int Tn, int C);

// dwte or dwpe may be null (frozen parameter).
template <typename T>
void embedding_backward(T* dwte, T* dwpe, const T* dout, const int32_t* tokens, int B, int Tn, int C, int V);

}  // namespace ferry::kernels::cpu
