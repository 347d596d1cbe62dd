// tests/support/gradcheck.h — finite-difference checking of whole graphs in fp64.
//
// A graph built in F64 on the CPU backend is run forward and backward once for the analytic
// gradients of every trainable parameter; each checked element is then nudged by ±h and the loss
// re-evaluated (central differences). Test-only op `dot_loss(x0, w0, x1, w1, ...) = Σ_k Σ x_k·w_k`
// gives any op a scalar loss whose gradient is known (∂/∂x_k = w_k).
#pragma once
#include <map>
#include <vector>

#include "engine/graph.h"

namespace ferry::test {

void register_dot_loss();

struct GradcheckInputs {
  std::map<int, std::vector<double>> f64;
  std::map<int, std::vector<int32_t>> i32;
};

struct GradcheckReport {
  int checked = 0;
  double max_rel_error = 0;
  std::string worst;  // parameter[index]: analytic vs numeric
};

// Checks up to `per_param` elements of every trainable parameter (all when 0), chosen at random.
// `grad_scale` divides the analytic gradient (cross_entropy's scale attribute).
GradcheckReport gradcheck(Graph& g, const GradcheckInputs& inputs, uint64_t seed, int per_param = 0,
                          double grad_scale = 1.0, double h = 1e-5);

}  // namespace ferry::test
