// kernels/cpu/embedding.cpp — reference for kernels/embedding.h.
#include "kernels/embedding.h"

#include <cstddef>

namespace ferry::kernels::cpu {

template <typename T>
void embedding_forward(T* out, const int32_t* tokens, const T* wte, const T* wpe, int B, int Tn, int C) {
#pragma omp parallel for schedule(static)
  for (int bt = 0; bt < B * Tn; ++bt) {
    const int t = bt % Tn;
    const T* te = wte + static_cast<size_t>(tokens[bt]) * C;
    const T* pe = wpe + static_cast<size_t>(t) * C;
    T* o = out + static_cast<size_t>(bt) * C;
    for (int c = 0; c < C; ++c) o[c] = te[c] + pe[c];
  }
}

template <typename T>
void embedding_backward(T* dwte, T* dwpe, const T* dout, const int32_t* tokens, int B, int Tn, int C, int V) {
  (void)V;
  // Sequential over (b, t): a fixed summation order for every row of dwte and dwpe.
  for (int bt = 0; bt < B * Tn; ++bt) {
    const int t = bt % Tn;
    const T* d = dout + static_cast<size_t>(bt) * C;
    if (dwte) {
      T* g = dwte + static_cast<size_t>(tokens[bt]) * C;
      for (int c = 0; c < C; ++c) g[c] += d[c];
    }
    if (dwpe) {
      T* g = dwpe + static_cast<size_t>(t) * C;
      for (int c = 0; c < C; ++c) g[c] += d[c];
    }
  }
}

template void embedding_forward<float>(float*, const int32_t*, const float*, const float*, int, int, int);
template void embedding_forward<double>(double*, const int32_t*, const double*, const double*, int, int, int);
template void embedding_backward<float>(float*, float*, const float*, const int32_t*, int, int, int, int);
template void embedding_backward<double>(double*, double*, const double*, const int32_t*, int, int, int, int);

}  // namespace ferry::kernels::cpu
