// kernels/cpu/gelu.cpp — reference for kernels/gelu.h.
#include "kernels/gelu.h"

#include "kernels/cpu/fast_exp.h"

#include <cmath>
#include <cstdint>
#include <type_traits>

namespace ferry::kernels::cpu {

namespace {
constexpr double kSqrt2OverPi = 0.79788456080286535588;  // √(2/π)

// tanh(u) = 1 − 2/(e^{2u} + 1): within 2.5e-7 of tanh absolutely (GELU adds it to 1, so absolute is
// what counts); exactly ±1 in the tails. The double instantiation (the gradient checks') keeps libm.
template <typename T>
inline T tanh_of(T u) {
  if constexpr (std::is_same_v<T, float>) {
    return 1.0f - 2.0f / (exp_approx(2.0f * u) + 1.0f);
  } else {
    return std::tanh(u);
  }
}
}  // namespace

template <typename T>
void gelu_forward(T* out, const T* inp, size_t n) {
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) {
    const T x = inp[i];
    const T u = T(kSqrt2OverPi) * (x + T(0.044715) * x * x * x);
    out[i] = T(0.5) * x * (T(1) + tanh_of(u));
  }
}

template <typename T>
void gelu_backward(T* dinp, const T* inp, const T* dout, size_t n) {
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) {
    const T x = inp[i];
    const T u = T(kSqrt2OverPi) * (x + T(0.044715) * x * x * x);
    const T th = tanh_of(u);
    const T sech2 = T(1) - th * th;
    const T du = T(kSqrt2OverPi) * (T(1) + T(3 * 0.044715) * x * x);
    dinp[i] = (T(0.5) * (T(1) + th) + T(0.5) * x * sech2 * du) * dout[i];
  }
}

template void gelu_forward<float>(float*, const float*, size_t);
template void gelu_forward<double>(double*, const double*, size_t);
template void gelu_backward<float>(float*, const float*, const float*, size_t);
template void gelu_backward<double>(double*, const double*, const double*, size_t);

}  // namespace ferry::kernels::cpu
