// kernels/cpu/attention.cpp — reference for kernels/attention.h.
//
// One (batch, head) at a time: its Q, K and V are gathered into contiguous scratch (K and V also
// transposed, [HS][T]) so that every inner loop runs along a contiguous dimension and vectorizes:
// a query row's scores along the keys, its output along the head dimension. One query row of scores
// lives at a time (O(T) scratch per row), never the T×T matrix; the backward recomputes the
// probabilities from the saved log-sum-exp, as a flash-style kernel does. Each (batch, head) belongs
// to one thread and every sum runs in a fixed order: results do not depend on the thread count.
#include "kernels/attention.h"

#include "kernels/cpu/fast_exp.h"

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

// Q, K, V of one (b, h): q and k, v rows [T][HS], and kt, vt transposed [HS][T].
template <typename T>
struct HeadScratch {
  std::vector<T> q, k, v, kt, vt;
  void gather(const T* qkv, int b, int h, int Tn, int NH, int HS) {
    const int C = NH * HS;
    const size_t n = static_cast<size_t>(Tn) * HS;
    q.resize(n), k.resize(n), v.resize(n), kt.resize(n), vt.resize(n);
    for (int t = 0; t < Tn; ++t) {
      const T* row = qkv + (static_cast<size_t>(b) * Tn + t) * 3 * C + h * HS;
      for (int d = 0; d < HS; ++d) {
        q[t * HS + d] = row[d];
        k[t * HS + d] = row[C + d];
        v[t * HS + d] = row[2 * C + d];
        kt[static_cast<size_t>(d) * Tn + t] = row[C + d];
        vt[static_cast<size_t>(d) * Tn + t] = row[2 * C + d];
      }
    }
  }
};

// scores[s] = scale · q·k_s for s < ns, along the contiguous key dimension of kt.
template <typename T>
void row_scores(T* scores, const T* q, const T* kt, int ns, int Tn, int HS, T scale) {
  for (int s = 0; s < ns; ++s) scores[s] = 0;
  for (int d = 0; d < HS; ++d) {
    const T qd = q[d];
    const T* krow = kt + static_cast<size_t>(d) * Tn;
#pragma omp simd
    for (int s = 0; s < ns; ++s) scores[s] += qd * krow[s];
  }
  for (int s = 0; s < ns; ++s) scores[s] *= scale;
}

}  // namespace

template <typename T>
void attention_forward(T* out, T* lse, const T* qkv, const int32_t* key_lengths, int B, int Tn, int NH, int HS,
                       bool causal) {
  const int C = NH * HS;
  const T scale = T(1) / std::sqrt(T(HS));
#pragma omp parallel
  {
    HeadScratch<T> hs;
    std::vector<T> p(Tn);
#pragma omp for collapse(2) schedule(static)
    for (int b = 0; b < B; ++b) {
      for (int h = 0; h < NH; ++h) {
        hs.gather(qkv, b, h, Tn, NH, HS);
        for (int t = 0; t < Tn; ++t) {
          T* o = out + (static_cast<size_t>(b) * Tn + t) * C + h * HS;
          T* l = lse + (static_cast<size_t>(b) * NH + h) * Tn + t;
          const int ns = visible_keys(t, Tn, key_lengths, b, causal);
          for (int d = 0; d < HS; ++d) o[d] = 0;
          if (ns == 0) {
            *l = -std::numeric_limits<T>::infinity();
            continue;
          }
          row_scores(p.data(), hs.q.data() + static_cast<size_t>(t) * HS, hs.kt.data(), ns, Tn, HS, scale);
          T mx = -std::numeric_limits<T>::infinity();
          for (int s = 0; s < ns; ++s) mx = p[s] > mx ? p[s] : mx;
          const T log_sum = mx + std::log(sum_exp(p.data(), ns, mx));
          for (int s = 0; s < ns; ++s) p[s] = exp_of(p[s] - log_sum);
          for (int s = 0; s < ns; ++s) {
            const T prob = p[s];
            const T* vs = hs.v.data() + static_cast<size_t>(s) * HS;
#pragma omp simd
            for (int d = 0; d < HS; ++d) o[d] += prob * vs[d];
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
    HeadScratch<T> hs;
    std::vector<T> p(Tn), dp(Tn), dk, dv;
    // Each (b, h) owns its slice of dQ, dK and dV: no two threads touch one element.
#pragma omp for collapse(2) schedule(static)
    for (int b = 0; b < B; ++b) {
      for (int h = 0; h < NH; ++h) {
        hs.gather(qkv, b, h, Tn, NH, HS);
        dk.assign(static_cast<size_t>(Tn) * HS, T(0));
        dv.assign(static_cast<size_t>(Tn) * HS, T(0));
        for (int t = 0; t < Tn; ++t) {
          T* dq = dqkv + (static_cast<size_t>(b) * Tn + t) * row + h * HS;
          for (int d = 0; d < HS; ++d) dq[d] = 0;
          const int ns = visible_keys(t, Tn, key_lengths, b, causal);
          if (ns == 0) continue;
          const size_t qrow = static_cast<size_t>(b) * Tn + t;
          const T* q = hs.q.data() + static_cast<size_t>(t) * HS;
          const T* o = out + qrow * C + h * HS;
          const T* go = dout + qrow * C + h * HS;
          const T l = lse[(static_cast<size_t>(b) * NH + h) * Tn + t];
          T D = 0;  // Σ_s p_s dP_s = dout · out
          for (int d = 0; d < HS; ++d) D += go[d] * o[d];
          row_scores(p.data(), q, hs.kt.data(), ns, Tn, HS, scale);
          for (int s = 0; s < ns; ++s) p[s] = exp_of(p[s] - l);
          // dP_s = dout · v_s, along the keys of vt.
          for (int s = 0; s < ns; ++s) dp[s] = 0;
          for (int d = 0; d < HS; ++d) {
            const T g = go[d];
            const T* vrow = hs.vt.data() + static_cast<size_t>(d) * Tn;
#pragma omp simd
            for (int s = 0; s < ns; ++s) dp[s] += g * vrow[s];
          }
          for (int s = 0; s < ns; ++s) {
            const T ds = p[s] * (dp[s] - D) * scale;
            const T* ks = hs.k.data() + static_cast<size_t>(s) * HS;
            T* dks = dk.data() + static_cast<size_t>(s) * HS;
            T* dvs = dv.data() + static_cast<size_t>(s) * HS;
            const T ps = p[s];
#pragma omp simd
            for (int d = 0; d < HS; ++d) {
              dq[d] += ds * ks[d];
              dks[d] += ds * q[d];
              dvs[d] += ps * go[d];
            }
          }
        }
        for (int t = 0; t < Tn; ++t) {
          T* base = dqkv + (static_cast<size_t>(b) * Tn + t) * row + h * HS;
          for (int d = 0; d < HS; ++d) {
            base[C + d] = dk[static_cast<size_t>(t) * HS + d];
            base[2 * C + d] = dv[static_cast<size_t>(t) * HS + d];
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
