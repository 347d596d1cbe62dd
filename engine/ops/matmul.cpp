// engine/ops/matmul.cpp — dense layer.
//   matmul(x [...,IC], w [OC,IC], b [OC]?) -> y [...,OC]
//   matmul_backward(dy, x, w) -> (dx, dw, db)    dw, db accumulating; attr has_bias
#include "engine/autodiff.h"
#include "engine/ops/ops.h"
#include "kernels/matmul.h"

namespace ferry {

void register_matmul_ops() {
  OpDef fwd;
  fwd.name = "matmul";
  fwd.infer = [](const Graph& g, const Node& n) {
    const Value& x = g.values[n.in[0]];
    const Value& w = g.values[n.in[1]];
    FERRY_CHECK(w.shape.size() == 2 && w.shape[1] == x.shape.back(), "matmul ", shape_str(x.shape), " by ",
                shape_str(w.shape));
    if (n.in.size() > 2 && n.in[2] >= 0) FERRY_CHECK(g.values[n.in[2]].shape == Shape{w.shape[0]}, "matmul bias");
    Shape y = x.shape;
    y.back() = w.shape[0];
    return std::vector<OutputSpec>{{y, x.dtype}};
  };
  fwd.backward = [](Autodiff& ad, int i) {
    const Node& n = ad.node(i);
    const int dy = ad.grad_of(n.out[0]);
    const int x = n.in[0], w = n.in[1];
    const int b = n.in.size() > 2 ? n.in[2] : -1;
    const bool want_dx = ad.needs_grad(x);
    const int dw = ad.param_grad(w);
    const int db = b >= 0 ? ad.param_grad(b) : Graph::kSkip;
    if (!want_dx && dw == Graph::kSkip && db == Graph::kSkip) return;
    auto outs = ad.emit("matmul_backward", {dy, x, w}, {}, {want_dx ? Graph::kNew : Graph::kSkip, dw, db});
    if (want_dx) ad.contribute(x, outs[0]);
  };
  fwd.cpu = [](KernelCall& c) {
    int N, IC;
    std::tie(N, IC) = rows_cols(c.in[0].shape);
    const int OC = static_cast<int>(c.in[1].shape[0]);
    dispatch_float(c.in[0].dtype, [&](auto tag) {
      using T = decltype(tag);
      const T* bias = c.in.size() > 2 ? c.in[2].as<T>() : nullptr;
      kernels::cpu::matmul_forward<T>(c.out[0].as<T>(), c.in[0].as<T>(), c.in[1].as<T>(), bias, N, IC, OC);
    });
  };
  register_op(fwd);

  OpDef bwd;
  bwd.name = "matmul_backward";
  bwd.infer = [](const Graph& g, const Node& n) {
    const Value& x = g.values[n.in[1]];
    const Value& w = g.values[n.in[2]];
    return std::vector<OutputSpec>{{x.shape, x.dtype}, {w.shape, w.dtype}, {{w.shape[0]}, w.dtype}};
  };
  bwd.cpu = [](KernelCall& c) {
    int N, IC;
    std::tie(N, IC) = rows_cols(c.in[1].shape);
    const int OC = static_cast<int>(c.in[2].shape[0]);
    dispatch_float(c.in[1].dtype, [&](auto tag) {
      using T = decltype(tag);
      kernels::cpu::matmul_backward<T>(c.out[0].as<T>(), c.out[1].as<T>(), c.out[2].as<T>(), c.in[0].as<T>(),
                                       c.in[1].as<T>(), c.in[2].as<T>(), N, IC, OC);
    });
  };
  register_op(bwd);
}

}  // namespace ferry
