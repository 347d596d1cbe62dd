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
