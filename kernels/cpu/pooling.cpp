// kernels/cpu/pooling.cpp — reference for kernels/pooling.h (pool_tokens, scale). OpenMP over rows
// or elements, each written by one thread in a fixed order.
#include <algorithm>

#include "kernels/pooling.h"

namespace ferry::kernels::cpu {

namespace {

// The positions row b pools and the weight of each.
struct Span {
  int begin, end;
  double weight;
};
Span pooled_span(int mode, int length, int Tn) {
  const int len = std::clamp(length, 1, Tn);
  switch (mode) {
    case kPoolFirst: return {0, 1, 1.0};
    case kPoolLast: return {len - 1, len, 1.0};
    default: return {0, len, 1.0 / len};
  }
}

}  // namespace

template <typename T>
void pool_tokens_forward(T* y, const T* x, const int32_t* lengths, int B, int Tn, int C, int mode) {
#pragma omp parallel for schedule(static)
  for (int b = 0; b < B; ++b) {
    const Span s = pooled_span(mode, lengths[b], Tn);
    T* out = y + static_cast<size_t>(b) * C;
    std::fill(out, out + C, T(0));
    for (int t = s.begin; t < s.end; ++t) {
      const T* row = x + (static_cast<size_t>(b) * Tn + t) * C;
      for (int c = 0; c < C; ++c) out[c] += row[c];
    }
    for (int c = 0; c < C; ++c) out[c] *= static_cast<T>(s.weight);
  }
}

template <typename T>
void pool_tokens_backward(T* dx, const T* dy, const int32_t* lengths, int B, int Tn, int C, int mode) {
#pragma omp parallel for schedule(static)
  for (int b = 0; b < B; ++b) {
    const Span s = pooled_span(mode, lengths[b], Tn);
    const T* g = dy + static_cast<size_t>(b) * C;
    for (int t = 0; t < Tn; ++t) {
      T* row = dx + (static_cast<size_t>(b) * Tn + t) * C;
      const bool in = t >= s.begin && t < s.end;
      for (int c = 0; c < C; ++c) row[c] = in ? g[c] * static_cast<T>(s.weight) : T(0);
    }
  }
}

template <typename T>
void scale(T* y, const T* x, T s, size_t n) {
#pragma omp parallel for schedule(static)
  for (size_t k = 0; k < n; ++k) y[k] = s * x[k];
}

template void pool_tokens_forward<float>(float*, const float*, const int32_t*, int, int, int, int);
template void pool_tokens_forward<double>(double*, const double*, const int32_t*, int, int, int, int);
template void pool_tokens_backward<float>(float*, const float*, const int32_t*, int, int, int, int);
template void pool_tokens_backward<double>(double*, const double*, const int32_t*, int, int, int, int);
template void scale<float>(float*, const float*, float, size_t);
template void scale<double>(double*, const double*, double, size_t);

}  // namespace ferry::kernels::cpu
