// kernels/cpu/cross_entropy.cpp — reference for kernels/cross_entropy.h.
#include "kernels/cross_entropy.h"

#include "kernels/cpu/fast_exp.h"

#include <cmath>
#include <cstddef>

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

template float cross_entropy_forward_backward<float>(float*, float*, const float*, const int32_t*, int, int, int,
                                                     float, int32_t);
template double cross_entropy_forward_backward<double>(double*, double*, const double*, const int32_t*, int, int, int,
                                                       double, int32_t);

}  // namespace ferry::kernels::cpu
