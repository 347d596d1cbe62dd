// kernels/cpu/attention.cpp — reference for kernels/attention.h.
//
// Materializes one query row of scores at a time (O(T) scratch), never the T×T matrix; the
// backward recomputes probabilities from the saved log-sum-exp, as a flash-style kernel does.
#include "kernels/attention.h"

#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

namespace ferry::kernels::cpu {

namespace {

inline int visible_keys(int t, int Tn, const int32_t* key_lengths, int b, bool causal) {
  int n = causal ? t + 1 : Tn;
  if (key_lengths && key_lengths[b] < n) n = key_lengths[b] < 0 ? 0 : key_lengths[b];
  return n;
}

}  // namespace

template <typename T>
void attention_forward(T* out, T* lse, const T* qkv, const int32_t* key_lengths, int B, int Tn, int NH, int HS,
                       bool causal) {
  const int C = NH * HS;
  const size_t row = static_cast<size_t>(3) * C;
  const T scale = T(1) / std::sqrt(T(HS));
#pragma omp parallel
  {
    std::vector<T> p(Tn);
#pragma omp for collapse(2) schedule(static)
    for (int b = 0; b < B; ++b) {
      for (int h = 0; h < NH; ++h) {
        for (int t = 0; t < Tn; ++t) {
          const T* q = qkv + (static_cast<size_t>(b) * Tn + t) * row + h * HS;
          T* o = out + (static_cast<size_t>(b) * Tn + t) * C + h * HS;
          T* l = lse + (static_cast<size_t>(b) * NH + h) * Tn + t;
          const int ns = visible_keys(t, Tn, key_lengths, b, causal);
          for (int d = 0; d < HS; ++d) o[d] = 0;
          if (ns == 0) {
            *l = -std::numeric_limits<T>::infinity();
            continue;
          }
          T mx = -std::numeric_limits<T>::infinity();
          for (int s = 0; s < ns; ++s) {
            const T* k = qkv + (static_cast<size_t>(b) * Tn + s) * row + C + h * HS;
            T dot = 0;
            for (int d = 0; d < HS; ++d) dot += q[d] * k[d];
            p[s] = dot * scale;
            if (p[s] > mx) mx = p[s];
          }
          T sum = 0;
          for (int s = 0; s < ns; ++s) sum += std::exp(p[s] - mx);
          const T log_sum = mx + std::log(sum);
          for (int s = 0; s < ns; ++s) {
            const T prob = std::exp(p[s] - log_sum);
            const T* v = qkv + (static_cast<size_t>(b) * Tn + s) * row + 2 * C + h * HS;
            for (int d = 0; d < HS; ++d) o[d] += prob * v[d];
          }
          *l = log_sum;
        }
      }
    }
  }
}

template <typename T>
void attention_backward(T* dqkv, const T* dout, const T* qkv, const T* out, const T* lse,
                        const int32_t* key_lengths, int B, int Tn, int NH, int HS, bool causal) {
  const int C = NH * HS;
  const size_t row = static_cast<size_t>(3) * C;
  const T scale = T(1) / std::sqrt(T(HS));
#pragma omp parallel
  {
    std::vector<T> p(Tn), dp(Tn);
    // Each (b, h) owns its slice of dQ, dK and dV: no two threads touch one element.
#pragma omp for collapse(2) schedule(static)
    for (int b = 0; b < B; ++b) {
      for (int h = 0; h < NH; ++h) {
        for (int t = 0; t < Tn; ++t) {
          T* base = dqkv + (static_cast<size_t>(b) * Tn + t) * row + h * HS;
          for (int d = 0; d < HS; ++d) base[d] = base[C + d] = base[2 * C + d] = 0;
        }
        for (int t = 0; t < Tn; ++t) {
          const int ns = visible_keys(t, Tn, key_lengths, b, causal);
          if (ns == 0) continue;
          const size_t qrow = (static_cast<size_t>(b) * Tn + t);
          const T* q = qkv + qrow * row + h * HS;
          const T* o = out + qrow * C + h * HS;
          const T* go = dout + qrow * C + h * HS;
          T* dq = dqkv + qrow * row + h * HS;
          const T l = lse[(static_cast<size_t>(b) * NH + h) * Tn + t];
          T D = 0;  // Σ_s p_s dP_s = dout · out
          for (int d = 0; d < HS; ++d) D += go[d] * o[d];
          for (int s = 0; s < ns; ++s) {
            const size_t krow = (static_cast<size_t>(b) * Tn + s) * row;
            const T* k = qkv + krow + C + h * HS;
            const T* v = qkv + krow + 2 * C + h * HS;
            T dot = 0, dpv = 0;
            for (int d = 0; d < HS; ++d) {
              dot += q[d] * k[d];
              dpv += go[d] * v[d];
            }
            p[s] = std::exp(dot * scale - l);
            dp[s] = dpv;
          }
          for (int s = 0; s < ns; ++s) {
            const size_t krow = (static_cast<size_t>(b) * Tn + s) * row;
            const T* k = qkv + krow + C + h * HS;
            T* dk = dqkv + krow + C + h * HS;
            T* dv = dqkv + krow + 2 * C + h * HS;
            const T ds = p[s] * (dp[s] - D) * scale;
            for (int d = 0; d < HS; ++d) {
              dq[d] += ds * k[d];
              dk[d] += ds * q[d];
              dv[d] += p[s] * go[d];
            }
          }
        }
      }
    }
  }
}

template void attention_forward<float>(float*, float*, const float*, const int32_t*, int, int, int, int, bool);
template void attention_forward<double>(double*, double*, const double*, const int32_t*, int, int, int, int, bool);
template void attention_backward<float>(float*, const float*, const float*, const float*, const float*,
                                        const int32_t*, int, int, int, int, bool);
template void attention_backward<double>(double*, const double*, const double*, const double*, const double*,
                                         const int32_t*, int, int, int, int, bool);

}  // namespace ferry::kernels::cpu
