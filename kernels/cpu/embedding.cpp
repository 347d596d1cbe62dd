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

template <typename T>
void vocab_parallel_embedding_forward(T* out, const int32_t* tokens, const T* wte_shard, const T* wpe, int B, int Tn,
                                      int C, int vocab_start, int rows) {
  for (int i = 0; i < B * Tn; ++i) {
    const int row = tokens[i] - vocab_start;
    const T* e = row >= 0 && row < rows ? wte_shard + static_cast<size_t>(row) * C : nullptr;
    const T* p = wpe ? wpe + static_cast<size_t>(i % Tn) * C : nullptr;
    T* o = out + static_cast<size_t>(i) * C;
    for (int k = 0; k < C; ++k) o[k] = (e ? e[k] : T(0)) + (p ? p[k] : T(0));
  }
}

// Sequential over tokens: every gradient row is summed in token order, whatever the thread count.
template <typename T>
void vocab_parallel_embedding_backward(T* dwte_shard, T* dwpe, const T* dout, const int32_t* tokens, int B, int Tn,
                                       int C, int vocab_start, int rows) {
  for (int i = 0; i < B * Tn; ++i) {
    const T* d = dout + static_cast<size_t>(i) * C;
    const int row = tokens[i] - vocab_start;
    if (dwte_shard && row >= 0 && row < rows) {
      T* w = dwte_shard + static_cast<size_t>(row) * C;
      for (int k = 0; k < C; ++k) w[k] += d[k];
    }
    if (dwpe) {
      T* p = dwpe + static_cast<size_t>(i % Tn) * C;
      for (int k = 0; k < C; ++k) p[k] += d[k];
    }
  }
}

template void vocab_parallel_embedding_forward<float>(float*, const int32_t*, const float*, const float*, int, int,
                                                      int, int, int);
template void vocab_parallel_embedding_forward<double>(double*, const int32_t*, const double*, const double*, int,
                                                       int, int, int, int);
template void vocab_parallel_embedding_backward<float>(float*, float*, const float*, const int32_t*, int, int, int,
                                                       int, int);
template void vocab_parallel_embedding_backward<double>(double*, double*, const double*, const int32_t*, int, int,
                                                        int, int, int);

template void embedding_forward<float>(float*, const int32_t*, const float*, const float*, int, int, int);
template void embedding_forward<double>(double*, const int32_t*, const double*, const double*, int, int, int);
template void embedding_backward<float>(float*, float*, const float*, const int32_t*, int, int, int, int);
template void embedding_backward<double>(double*, double*, const double*, const int32_t*, int, int, int, int);

}  // namespace ferry::kernels::cpu
