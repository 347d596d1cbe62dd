// kernels/cpu/fast_exp.h — e^x for the float CPU kernels without a libm call, so that their loops
// vectorise (GELU's tanh, the softmax of attention and of cross-entropy). Internal to kernels/cpu.
// The double instantiations (the finite-difference gradient checks') keep libm.
#pragma once
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <type_traits>

namespace ferry::kernels::cpu {

// x = n·ln2 + r with |r| ≤ ln2/2 (ln2 split in two so n·ln2 is exact), e^r by its degree-6 Taylor
// polynomial (truncation ≤ 1.2e-7 relative), 2^n built in the exponent bits. x is clamped to
// [−87, 88], where 2^n stays a normal float (so e^x of a very negative x is ~1e-38, not 0).
// n = x·log2(e) rounded to nearest by adding and subtracting 1.5·2^23 (exact for |x·log2 e| < 2^22),
// not std::floor: GCC vectorises floor only under -fno-trapping-math, and without vectorising
// this is no faster than libm (measured with -fopt-info-vec: the first version's loops stayed scalar).
inline float exp_approx(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  constexpr float kShifter = 12582912.0f;  // 1.5·2^23: its ulp is 1
  const float n = (x * 1.44269504088896341f + kShifter) - kShifter;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  return p * std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
}

template <typename T>
inline T exp_of(T x) {
  if constexpr (std::is_same_v<T, float>) {
    return exp_approx(x);
  } else {
    return std::exp(x);
  }
}

// Σ_i e^(x[i] − shift) in a fixed order: for float, 16 interleaved partial sums (one vector of
// lanes, combined pairwise at the end) so the loop vectorises; for double, left to right. The order
// depends on n only, never on the thread count.
template <typename T>
inline T sum_exp(const T* x, int n, T shift) {
  if constexpr (std::is_same_v<T, float>) {
    constexpr int L = 16;
    float acc[L] = {};
    int i = 0;
    for (; i + L <= n; i += L)
      for (int j = 0; j < L; ++j) acc[j] += exp_approx(x[i + j] - shift);
    float tail = 0.0f;
    for (; i < n; ++i) tail += exp_approx(x[i] - shift);
    for (int w = L / 2; w > 0; w /= 2)
      for (int j = 0; j < w; ++j) acc[j] += acc[j + w];
    return acc[0] + tail;
  } else {
    T s = 0;
    for (int i = 0; i < n; ++i) s += std::exp(x[i] - shift);
    return s;
  }
}

}  // namespace ferry::kernels::cpu
