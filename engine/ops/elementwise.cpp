// engine/ops/elementwise.cpp — add(a, b) -> a + b, used by autodiff to sum gradient contributions
// and by models for residual joins.
#include "engine/autodiff.h"
#include "engine/ops/ops.h"
#include "kernels/elementwise.h"

namespace ferry {

void register_elementwise_ops() {
  OpDef add;
  add.name = "add";
  add.infer = [](const Graph& g, const Node& n) {
    const Value& a = g.values[n.in[0]];
    FERRY_CHECK(g.values[n.in[1]].shape == a.shape, "add operands differ in shape");
    return std::vector<OutputSpec>{{a.shape, a.dtype}};
  };
  add.backward = [](Autodiff& ad, int i) {
    const Node& n = ad.node(i);
    const int dy = ad.grad_of(n.out[0]);
    for (int k = 0; k < 2; ++k)
      if (ad.needs_grad(n.in[k])) ad.contribute(n.in[k], dy);
  };
  add.cpu = [](KernelCall& c) {
    dispatch_float(c.in[0].dtype, [&](auto tag) {
      using T = decltype(tag);
      kernels::cpu::add<T>(c.out[0].as<T>(), c.in[0].as<T>(), c.in[1].as<T>(), static_cast<size_t>(c.in[0].numel()));
    });
  };
  register_op(add);

  // accumulate(g) -> target (+= g); target is a parameter gradient given by autodiff.
  OpDef acc;
  acc.name = "accumulate";
  acc.infer = [](const Graph& g, const Node& n) {
    const Value& x = g.values[n.in[0]];
    return std::vector<OutputSpec>{{x.shape, x.dtype}};
  };
  acc.cpu = [](KernelCall& c) {
    dispatch_float(c.in[0].dtype, [&](auto tag) {
      using T = decltype(tag);
      kernels::cpu::add<T>(c.out[0].as<T>(), c.out[0].as<T>(), c.in[0].as<T>(), static_cast<size_t>(c.in[0].numel()));
    });
  };
  register_op(acc);
}

}  // namespace ferry
