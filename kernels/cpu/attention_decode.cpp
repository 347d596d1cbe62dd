// kernels/cpu/attention_decode.cpp — reference for kernels/attention_decode.h.
#include "kernels/attention_decode.h"

#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

namespace ferry::kernels::cpu {

template <typename T>
void kv_cache_append(T* k_cache, T* v_cache, const T* qkv, const int32_t* cache_rows, const int32_t* positions, int B,
                     int NH, int HS, int Tmax) {
  const int C = NH * HS;
  for (int b = 0; b < B; ++b) {
    const int t = positions[b];
    if (t < 0 || t >= Tmax) continue;  // the caller checks; never write outside the cache
    const T* row = qkv + static_cast<size_t>(b) * 3 * C;
    for (int h = 0; h < NH; ++h) {
      const size_t r = static_cast<size_t>(cache_rows ? cache_rows[b] : b);
      const size_t at = ((r * NH + h) * Tmax + t) * HS;
      for (int d = 0; d < HS; ++d) {
        k_cache[at + d] = row[C + h * HS + d];
        v_cache[at + d] = row[2 * C + h * HS + d];
      }
    }
  }
}

template <typename T>
void attention_decode(T* out, const T* qkv, const T* k_cache, const T* v_cache, const int32_t* cache_rows,
                      const int32_t* lengths, int B, int NH, int HS, int Tmax) {
  const int C = NH * HS;
  const T scale = T(1) / std::sqrt(T(HS));
#pragma omp parallel
  {
    std::vector<T> p(Tmax);
#pragma omp for collapse(2) schedule(static)
    for (int b = 0; b < B; ++b) {
      for (int h = 0; h < NH; ++h) {
        const T* q = qkv + static_cast<size_t>(b) * 3 * C + h * HS;
        const size_t r = static_cast<size_t>(cache_rows ? cache_rows[b] : b);
        const T* keys = k_cache + (r * NH + h) * Tmax * HS;
        const T* values = v_cache + (r * NH + h) * Tmax * HS;
        T* o = out + static_cast<size_t>(b) * C + h * HS;
        const int ns = lengths[b] < 0 ? 0 : (lengths[b] > Tmax ? Tmax : lengths[b]);
        for (int d = 0; d < HS; ++d) o[d] = 0;
        if (ns == 0) continue;
        T mx = -std::numeric_limits<T>::infinity();
        for (int s = 0; s < ns; ++s) {
          const T* k = keys + static_cast<size_t>(s) * HS;
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
          const T* v = values + static_cast<size_t>(s) * HS;
          for (int d = 0; d < HS; ++d) o[d] += prob * v[d];
        }
      }
    }
  }
}

template void kv_cache_append<float>(float*, float*, const float*, const int32_t*, const int32_t*, int, int, int, int);
template void kv_cache_append<double>(double*, double*, const double*, const int32_t*, const int32_t*, int, int, int,
                                      int);
template void attention_decode<float>(float*, const float*, const float*, const float*, const int32_t*,
                                      const int32_t*, int, int, int, int);
template void attention_decode<double>(double*, const double*, const double*, const double*, const int32_t*,
                                       const int32_t*, int, int, int, int);

}  // namespace ferry::kernels::cpu
