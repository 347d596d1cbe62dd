// kernels/cpu/cross_entropy.cpp — reference for kernels/cross_entropy.h.
#include "kernels/cross_entropy.h"

#include "kernels/cpu/fast_exp.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

namespace ferry::kernels::cpu {

template <typename T>
T cross_entropy_forward_backward(T* losses, T* dlogits, const T* logits, const int32_t* targets, int N, int V, int ld,
                                 T scale, int32_t ignore_index) {
  int n_valid = 0;
  for (int n = 0; n < N; ++n) n_valid += targets[n] != ignore_index;
  const T inv_valid = n_valid ? T(1) / T(n_valid) : T(0);
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const T* x = logits + static_cast<size_t>(n) * ld;
    T* dx = dlogits ? dlogits + static_cast<size_t>(n) * ld : nullptr;
    const int32_t y = targets[n];
    if (dx)
      for (int v = V; v < ld; ++v) dx[v] = 0;  // padding columns: no gradient
    if (y == ignore_index) {
      losses[n] = 0;
      if (dx)
        for (int v = 0; v < V; ++v) dx[v] = 0;
      continue;
    }
    T mx = x[0];
    for (int v = 1; v < V; ++v) mx = x[v] > mx ? x[v] : mx;
    // exp_of/sum_exp: libm-free and vectorised for float (the softmax over the vocabulary was the
    // largest non-matmul cost of a small model's CPU step), libm for double.
    const T lse = mx + std::log(sum_exp(x, V, mx));
    const T target_logit = x[y];  // read before an in-place dlogits overwrites it
    losses[n] = lse - target_logit;
    if (dx) {
      const T g = scale * inv_valid;
      for (int v = 0; v < V; ++v) dx[v] = g * exp_of(x[v] - lse);
      dx[y] -= g;
    }
  }
  T total = 0;
  for (int n = 0; n < N; ++n) total += losses[n];
  return total * inv_valid;
}

template <typename T>
void vocab_parallel_cross_entropy_row_max(T* row_max, const T* logits, int N, int valid, int ld) {
  for (int n = 0; n < N; ++n) {
    const T* x = logits + static_cast<size_t>(n) * ld;
    T mx = -std::numeric_limits<T>::infinity();
    for (int v = 0; v < valid; ++v) mx = x[v] > mx ? x[v] : mx;
    row_max[n] = mx;
  }
}

template <typename T>
void vocab_parallel_cross_entropy_sums(T* sums, const T* logits, const int32_t* targets, const T* row_max, int N,
                                       int valid, int ld, int vocab_start, int32_t ignore_index) {
  for (int n = 0; n < N; ++n) {
    const T* x = logits + static_cast<size_t>(n) * ld;
    T sum = 0;
    for (int v = 0; v < valid; ++v) sum += std::exp(x[v] - row_max[n]);
    const int local = targets[n] - vocab_start;
    sums[2 * n] = sum;
    sums[2 * n + 1] = targets[n] != ignore_index && local >= 0 && local < valid ? x[local] : T(0);
  }
}

template <typename T>
T vocab_parallel_cross_entropy_finish(T* losses, T* dlogits, const T* logits, const int32_t* targets, const T* row_max,
                                      const T* sums, int N, int valid, int ld, int vocab_start, T scale,
                                      int32_t ignore_index, int64_t label_count) {
  int64_t n_valid = 0;
  for (int n = 0; n < N; ++n) n_valid += targets[n] != ignore_index;
  if (label_count >= 0) n_valid = label_count;
  const T inv_valid = n_valid ? T(1) / T(n_valid) : T(0);
  T total = 0;
  for (int n = 0; n < N; ++n) {
    T* dx = dlogits ? dlogits + static_cast<size_t>(n) * ld : nullptr;
    if (dx) std::fill(dx + valid, dx + ld, T(0));  // padding: never read, no gradient
    if (targets[n] == ignore_index) {
      losses[n] = 0;
      if (dx) std::fill(dx, dx + valid, T(0));
      continue;
    }
    const T lse = row_max[n] + std::log(sums[2 * n]);
    losses[n] = lse - sums[2 * n + 1];
    total += losses[n];
    if (dx) {
      const T* x = logits + static_cast<size_t>(n) * ld;
      const T g = scale * inv_valid;
      const int local = targets[n] - vocab_start;
      for (int v = 0; v < valid; ++v) dx[v] = g * (std::exp(x[v] - lse) - (v == local ? T(1) : T(0)));
    }
  }
  return total * inv_valid;
}

#define FERRY_VP_CE(T)                                                                                            \
  template void vocab_parallel_cross_entropy_row_max<T>(T*, const T*, int, int, int);                            \
  template void vocab_parallel_cross_entropy_sums<T>(T*, const T*, const int32_t*, const T*, int, int, int, int,  \
                                                     int32_t);                                                    \
  template T vocab_parallel_cross_entropy_finish<T>(T*, T*, const T*, const int32_t*, const T*, const T*, int, int, \
                                                    int, int, T, int32_t, int64_t);
FERRY_VP_CE(float)
FERRY_VP_CE(double)
#undef FERRY_VP_CE

template float cross_entropy_forward_backward<float>(float*, float*, const float*, const int32_t*, int, int, int,
                                                     float, int32_t);
template double cross_entropy_forward_backward<double>(double*, double*, const double*, const int32_t*, int, int, int,
                                                       double, int32_t);

}  // namespace ferry::kernels::cpu
