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
