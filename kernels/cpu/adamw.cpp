// kernels/cpu/adamw.cpp — reference for kernels/adamw.h.
#include "kernels/adamw.h"

#include <cmath>

namespace ferry::kernels::cpu {

void adamw_update(float* params, float* m, float* v, const float* grads, size_t n, const AdamWHyper& h) {
  const float bc1 = 1.0f - std::pow(h.beta1, static_cast<float>(h.step));
  const float bc2 = 1.0f - std::pow(h.beta2, static_cast<float>(h.step));
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) {
    const float g = grads[i] * h.grad_scale;
    const float mi = h.beta1 * m[i] + (1.0f - h.beta1) * g;
    const float vi = h.beta2 * v[i] + (1.0f - h.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    const float mhat = mi / bc1;
    const float vhat = vi / bc2;
    params[i] -= h.lr * (mhat / (std::sqrt(vhat) + h.eps) + h.weight_decay * params[i]);
  }
}

template <typename T>
double grad_norm_squared(const T* grads, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += static_cast<double>(grads[i]) * static_cast<double>(grads[i]);
  return s;
}

template double grad_norm_squared<float>(const float*, size_t);
template double grad_norm_squared<double>(const double*, size_t);

}  // namespace ferry::kernels::cpu
