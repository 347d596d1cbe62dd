// kernels/elementwise.h — small helpers the graph needs between the big ops.
// Contract: add: out[i] = a[i] + b[i] (out may alias a or b).
#pragma once
#include <cstddef>

namespace ferry::kernels::cpu {

template <typename T>
void add(T* out, const T* a, const T* b, size_t n);

}  // namespace ferry::kernels::cpu
