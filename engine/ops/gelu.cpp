// engine/ops/gelu.cpp — GELU (tanh form).
//   gelu(x) -> y ;  gelu_backward(x, dy) -> dx
#include "engine/autodiff.h"
#include "engine/ops/ops.h"
#include "kernels/gelu.h"

namespace ferry {

void register_gelu_ops() {
  OpDef fwd;
  fwd.name = "gelu";
  fwd.infer = [](const Graph& g, const Node& n) {
    const Value& x = g.values[n.in[0]];
    return std::vector<OutputSpec>{{x.shape, x.dtype}};
  };
  fwd.backward = [](Autodiff& ad, int i) {
    const Node& n = ad.node(i);
    if (!ad.needs_grad(n.in[0])) return;
    ad.contribute(n.in[0], ad.emit("gelu_backward", {n.in[0], ad.grad_of(n.out[0])}, {}, {Graph::kNew})[0]);
  };
  fwd.cpu = [](KernelCall& c) {
    dispatch_float(c.in[0].dtype, [&](auto tag) {
      using T = decltype(tag);
      kernels::cpu::gelu_forward<T>(c.out[0].as<T>(), c.in[0].as<T>(), static_cast<size_t>(c.in[0].numel()));
    });
  };
  register_op(fwd);

  OpDef bwd;
  bwd.name = "gelu_backward";
  bwd.infer = [](const Graph& g, const Node& n) {
    const Value& x = g.values[n.in[0]];
    return std::vector<OutputSpec>{{x.shape, x.dtype}};
  };
  bwd.cpu = [](KernelCall& c) {
    dispatch_float(c.in[0].dtype, [&](auto tag) {
      using T = decltype(tag);
      kernels::cpu::gelu_backward<T>(c.out[0].as<T>(), c.in[0].as<T>(), c.in[1].as<T>(),
                                     static_cast<size_t>(c.in[0].numel()));
    });
  };
  register_op(bwd);
}

}  // namespace ferry
