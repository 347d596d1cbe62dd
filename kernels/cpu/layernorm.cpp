// kernels/cpu/layernorm.cpp — reference for kernels/layernorm.h.
#include "kernels/layernorm.h"

#include <cmath>
#include <cstddef>

namespace ferry::kernels::cpu {

namespace {
constexpr double kEps = 1e-5;
}

template <typename T>
void residual_layernorm_forward(T* resid, T* out, T* mean, T* rstd, const T* a, const T* b, const T* weight,
                                const T* bias, int N, int C) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const size_t row = static_cast<size_t>(n) * C;
    const T* x = a + row;
    if (b) {
      for (int c = 0; c < C; ++c) resid[row + c] = a[row + c] + b[row + c];
      x = resid + row;
    }
    T m = 0;
    for (int c = 0; c < C; ++c) m += x[c];
    m /= C;
    T var = 0;
    for (int c = 0; c < C; ++c) var += (x[c] - m) * (x[c] - m);
    var /= C;
    const T s = T(1) / std::sqrt(var + T(kEps));
    for (int c = 0; c < C; ++c) out[row + c] = (x[c] - m) * s * weight[c] + bias[c];
    mean[n] = m;
    rstd[n] = s;
  }
}

template <typename T>
void layernorm_backward(T* dinp, T* dweight, T* dbias, const T* dout, const T* dresid, const T* inp,
                        const T* weight, const T* mean, const T* rstd, int N, int C) {
  // dinp: rows are independent. Null when no gradient is wanted below this norm.
#pragma omp parallel for schedule(static)
  for (int n = 0; n < (dinp ? N : 0); ++n) {
    const size_t row = static_cast<size_t>(n) * C;
    const T m = mean[n], s = rstd[n];
    T dnorm_mean = 0, dnorm_norm_mean = 0;
    for (int c = 0; c < C; ++c) {
      const T norm = (inp[row + c] - m) * s;
      const T dnorm = weight[c] * dout[row + c];
      dnorm_mean += dnorm;
      dnorm_norm_mean += dnorm * norm;
    }
    dnorm_mean /= C;
    dnorm_norm_mean /= C;
    for (int c = 0; c < C; ++c) {
      const T norm = (inp[row + c] - m) * s;
      const T dnorm = weight[c] * dout[row + c];
      T g = (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
      if (dresid) g += dresid[row + c];
      dinp[row + c] = g;
    }
  }
  // dweight, dbias: each channel reduced over rows in order by one thread.
  if (dweight || dbias) {
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; ++c) {
      T gw = 0, gb = 0;
      for (int n = 0; n < N; ++n) {
        const size_t i = static_cast<size_t>(n) * C + c;
        gw += (inp[i] - mean[n]) * rstd[n] * dout[i];
        gb += dout[i];
      }
      if (dweight) dweight[c] += gw;
      if (dbias) dbias[c] += gb;
    }
  }
}

template void residual_layernorm_forward<float>(float*, float*, float*, float*, const float*, const float*,
                                                const float*, const float*, int, int);
template void residual_layernorm_forward<double>(double*, double*, double*, double*, const double*, const double*,
                                                 const double*, const double*, int, int);
template void layernorm_backward<float>(float*, float*, float*, const float*, const float*, const float*,
                                        const float*, const float*, const float*, int, int);
template void layernorm_backward<double>(double*, double*, double*, const double*, const double*, const double*,
                                         const double*, const double*, const double*, int, int);

}  // namespace ferry::kernels::cpu
