// kernels/cpu/matmul.cpp — reference for kernels/matmul.h.
//
// Plain loops, tiled only so that a tile of the weight stays in cache while a tile of rows passes
// over it (the vocabulary head is the largest operand). Each output element is one dot product or
// one ascending sum, computed by one thread: the result does not depend on the thread count.
#include "kernels/matmul.h"

#include <algorithm>
#include <cstddef>

namespace ferry::kernels::cpu {

namespace {
constexpr int kRowTile = 64;
constexpr int kColTile = 64;
}  // namespace

template <typename T>
void matmul_forward(T* out, const T* inp, const T* weight, const T* bias, int N, int IC, int OC) {
  const int row_tiles = (N + kRowTile - 1) / kRowTile;
  const int col_tiles = (OC + kColTile - 1) / kColTile;
#pragma omp parallel for collapse(2) schedule(static)
  for (int rt = 0; rt < row_tiles; ++rt) {
    for (int ct = 0; ct < col_tiles; ++ct) {
      const int n_end = std::min(N, (rt + 1) * kRowTile);
      const int o_end = std::min(OC, (ct + 1) * kColTile);
      for (int n = rt * kRowTile; n < n_end; ++n) {
        const T* __restrict x = inp + static_cast<size_t>(n) * IC;
        T* __restrict y = out + static_cast<size_t>(n) * OC;
        for (int o = ct * kColTile; o < o_end; ++o) {
          const T* __restrict w = weight + static_cast<size_t>(o) * IC;
          T s = 0;
#pragma omp simd reduction(+ : s)
          for (int i = 0; i < IC; ++i) s += x[i] * w[i];
          y[o] = bias ? s + bias[o] : s;
        }
      }
    }
  }
}

template <typename T>
void matmul_backward(T* dinp, T* dweight, T* dbias, const T* dout, const T* inp, const T* weight, int N, int IC,
                     int OC) {
  if (dinp) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; ++n) {
      T* __restrict dx = dinp + static_cast<size_t>(n) * IC;
      const T* __restrict dy = dout + static_cast<size_t>(n) * OC;
      for (int i = 0; i < IC; ++i) dx[i] = 0;
      for (int o = 0; o < OC; ++o) {
        const T g = dy[o];
        const T* __restrict w = weight + static_cast<size_t>(o) * IC;
#pragma omp simd
        for (int i = 0; i < IC; ++i) dx[i] += g * w[i];
      }
    }
  }
  if (dweight || dbias) {
    const int col_tiles = (OC + kColTile - 1) / kColTile;
#pragma omp parallel for schedule(static)
    for (int ct = 0; ct < col_tiles; ++ct) {
      const int o_end = std::min(OC, (ct + 1) * kColTile);
      for (int n = 0; n < N; ++n) {
        const T* __restrict x = inp + static_cast<size_t>(n) * IC;
        const T* __restrict dy = dout + static_cast<size_t>(n) * OC;
        for (int o = ct * kColTile; o < o_end; ++o) {
          const T g = dy[o];
          if (dbias) dbias[o] += g;
          if (dweight) {
            T* __restrict dw = dweight + static_cast<size_t>(o) * IC;
#pragma omp simd
            for (int i = 0; i < IC; ++i) dw[i] += g * x[i];
          }
        }
      }
    }
  }
}

template void matmul_forward<float>(float*, const float*, const float*, const float*, int, int, int);
template void matmul_forward<double>(double*, const double*, const double*, const double*, int, int, int);
template void matmul_backward<float>(float*, float*, float*, const float*, const float*, const float*, int, int,
                                     int);
template void matmul_backward<double>(double*, double*, double*, const double*, const double*, const double*, int,
                                      int, int);

}  // namespace ferry::kernels::cpu
