// kernels/cpu/elementwise.cpp — reference for kernels/elementwise.h.
#include "kernels/elementwise.h"

namespace ferry::kernels::cpu {

template <typename T>
void add(T* out, const T* a, const T* b, size_t n) {
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

template void add<float>(float*, const float*, const float*, size_t);
template void add<double>(double*, const double*, const double*, size_t);

}  // namespace ferry::kernels::cpu
