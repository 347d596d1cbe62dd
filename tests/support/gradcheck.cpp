// tests/support/gradcheck.cpp
#include "tests/support/gradcheck.h"

#include <cmath>
#include <mutex>
#include <random>

#include "engine/autodiff.h"
#include "engine/backend.h"
#include "engine/executor.h"
#include "engine/op.h"
#include "engine/ops/ops.h"

namespace ferry::test {

void register_dot_loss() {
  static std::once_flag once;
  std::call_once(once, [] {
    OpDef d;
    d.name = "dot_loss";
    d.infer = [](const Graph& g, const Node& n) {
      return std::vector<OutputSpec>{{{1}, g.values[n.in[0]].dtype}};
    };
    d.backward = [](Autodiff& ad, int i) {
      const Node& n = ad.node(i);
      FERRY_CHECK(ad.grad_of(n.out[0]) == Autodiff::kSeed, "dot_loss must be the root");
      for (size_t k = 0; k + 1 < n.in.size(); k += 2)
        if (ad.needs_grad(n.in[k])) ad.contribute(n.in[k], n.in[k + 1]);
    };
    d.cpu = [](KernelCall& c) {
      double s = 0;
      for (size_t k = 0; k + 1 < c.in.size(); k += 2) {
        const double* x = c.in[k].as<double>();
        const double* w = c.in[k + 1].as<double>();
        for (int64_t i = 0; i < c.in[k].numel(); ++i) s += x[i] * w[i];
      }
      *c.out[0].as<double>() = s;
    };
    register_op(d);
  });
}

GradcheckReport gradcheck(Graph& g, const GradcheckInputs& inputs, uint64_t seed, int per_param, double grad_scale,
                          double h) {
  derive_backward(g);
  auto backend = make_cpu_backend();
  Executor ex(g, *backend);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  // The executor's buffers are in the storage order (engine/graph.h): index them by p.storage.
  double* params = ex.params().as<double>();
  for (const auto& p : g.params)
    for (int64_t i = 0; i < p.numel; ++i) params[p.storage + i] = u(rng);
  // Layernorm weights near 1 keep the check in a well-conditioned region.
  for (const auto& p : g.params)
    if (p.name.find("ln") != std::string::npos && p.name.find("weight") != std::string::npos)
      for (int64_t i = 0; i < p.numel; ++i) params[p.storage + i] = 1.0 + 0.1 * u(rng);
  for (const auto& [v, data] : inputs.f64) ex.set_input(v, data.data(), data.size() * sizeof(double));
  for (const auto& [v, data] : inputs.i32) ex.set_input(v, data.data(), data.size() * sizeof(int32_t));

  auto loss = [&] {
    ex.forward(false);
    return ex.read_scalar(g.loss);
  };
  ex.zero_grads();
  ex.forward(true);
  ex.backward();
  std::vector<double> analytic(ex.grads().as<double>(), ex.grads().as<double>() + g.storage_size());

  GradcheckReport r;
  for (const auto& p : g.params) {
    if (!p.trainable) continue;
    std::vector<int64_t> idx;
    if (per_param <= 0 || per_param >= p.numel) {
      for (int64_t i = 0; i < p.numel; ++i) idx.push_back(i);
    } else {
      for (int k = 0; k < per_param; ++k) idx.push_back(static_cast<int64_t>(rng() % p.numel));
    }
    for (int64_t i : idx) {
      double& x = params[p.storage + i];
      const double saved = x;
      x = saved + h;
      const double lp = loss();
      x = saved - h;
      const double lm = loss();
      x = saved;
      const double numeric = (lp - lm) / (2 * h);
      const double a = analytic[p.storage + i] / grad_scale;
      // Relative error, with a floor so that exact zeros (a key bias under softmax) compare against
      // finite-difference noise (~1e-11 here) rather than against themselves.
      const double rel = std::abs(a - numeric) / std::max(1e-3, std::abs(a) + std::abs(numeric));
      ++r.checked;
      if (rel > r.max_rel_error) {
        r.max_rel_error = rel;
        r.worst = p.name + "[" + std::to_string(i) + "]: analytic " + std::to_string(a) + " vs numeric " +
                  std::to_string(numeric);
      }
    }
  }
  return r;
}

}  // namespace ferry::test
