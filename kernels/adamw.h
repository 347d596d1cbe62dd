// kernels/adamw.h — AdamW over a flat range of parameters, and the global gradient norm.
//
// Contract (n elements, step t ≥ 1, decoupled weight decay as in Loshchilov & Hutter):
//   g  = grads[i] · grad_scale                      (grad_scale carries clipping)
//   m  = β1·m + (1-β1)·g ;  v = β2·v + (1-β2)·g²
//   p -= lr · ( m/(1-β1ᵗ) / (√(v/(1-β2ᵗ)) + eps) + weight_decay · p )
// params, m, v updated in place; grads read.
//   grad_norm_squared: Σ g² over n elements, accumulated in double in a fixed order.
#pragma once
#include <cstddef>

namespace ferry::kernels::cpu {

struct AdamWHyper {
  float lr;
  float beta1;
  float beta2;
  float eps;
  float weight_decay;
  int step;
  float grad_scale;
};

void adamw_update(float* params, float* m, float* v, const float* grads, size_t n, const AdamWHyper& h);

template <typename T>
double grad_norm_squared(const T* grads, size_t n);

}  // namespace ferry::kernels::cpu
