// engine/ops/layernorm.cpp — layernorm and the fused residual + layernorm.
//   layernorm(x, w, b)                -> (y, mean, rstd)
//   residual_layernorm(a, r, w, b)    -> (resid = a + r, y = LN(resid), mean, rstd)
//   layernorm_backward(dy, dresid?, x, w, mean, rstd) -> (dx, dw, db)   dw, db accumulating
// For the fused op, dx is the gradient of resid, which flows unchanged to both a and r.
#include "engine/autodiff.h"
#include "engine/ops/ops.h"
#include "kernels/layernorm.h"

namespace ferry {

namespace {

// Mean and rstd stay fp32 under bf16 activations: they scale every element of the backward.
std::vector<OutputSpec> stats_specs(const Value& x) {
  Shape rows(x.shape.begin(), x.shape.end() - 1);
  return {{rows, statistics_dtype(x.dtype)}, {rows, statistics_dtype(x.dtype)}};
}

// Emits the backward node shared by both forward ops. `x` is the normalized input, `y`, `mean`,
// `rstd` the forward outputs, `resid_out` the residual output (-1 for plain layernorm).
void emit_layernorm_backward(Autodiff& ad, int x, int w, int b, int y, int mean, int rstd, int resid_out,
                             const std::vector<int>& grad_targets) {
  int dy = ad.grad_of(y);
  const int dresid = resid_out >= 0 ? ad.grad_of(resid_out) : -1;
  bool wants_dx = false;
  for (int t : grad_targets) wants_dx = wants_dx || ad.needs_grad(t);
  const int dw = ad.param_grad(w);
  const int db = ad.param_grad(b);
  if (dy < 0) {
    // Only the residual output carries a gradient: it passes straight through.
    if (dresid >= 0)
      for (int t : grad_targets)
        if (ad.needs_grad(t)) ad.contribute(t, dresid);
    return;
  }
  auto outs = ad.emit("layernorm_backward", {dy, dresid, x, w, mean, rstd}, {},
                      {wants_dx ? Graph::kNew : Graph::kSkip, dw, db});
  if (wants_dx)
    for (int t : grad_targets)
      if (ad.needs_grad(t)) ad.contribute(t, outs[0]);
}

}  // namespace

void register_layernorm_ops() {
  OpDef ln;
  ln.name = "layernorm";
  ln.infer = [](const Graph& g, const Node& n) {
    const Value& x = g.values[n.in[0]];
    FERRY_CHECK(g.values[n.in[1]].shape == Shape{x.shape.back()}, "layernorm weight shape");
    auto s = stats_specs(x);
    return std::vector<OutputSpec>{{x.shape, x.dtype}, s[0], s[1]};
  };
  ln.backward = [](Autodiff& ad, int i) {
    const Node& n = ad.node(i);
    emit_layernorm_backward(ad, n.in[0], n.in[1], n.in[2], n.out[0], n.out[1], n.out[2], -1, {n.in[0]});
  };
  ln.cpu = [](KernelCall& c) {
    int N, C;
    std::tie(N, C) = rows_cols(c.in[0].shape);
    dispatch_float(c.in[0].dtype, [&](auto tag) {
      using T = decltype(tag);
      kernels::cpu::residual_layernorm_forward<T>(nullptr, c.out[0].as<T>(), c.out[1].as<T>(), c.out[2].as<T>(),
                                                  c.in[0].as<T>(), nullptr, c.in[1].as<T>(), c.in[2].as<T>(), N, C);
    });
  };
  register_op(ln);

  OpDef rln;
  rln.name = "residual_layernorm";
  rln.infer = [](const Graph& g, const Node& n) {
    const Value& a = g.values[n.in[0]];
    FERRY_CHECK(g.values[n.in[1]].shape == a.shape, "residual_layernorm operands differ in shape");
    auto s = stats_specs(a);
    return std::vector<OutputSpec>{{a.shape, a.dtype}, {a.shape, a.dtype}, s[0], s[1]};
  };
  rln.backward = [](Autodiff& ad, int i) {
    const Node& n = ad.node(i);
    emit_layernorm_backward(ad, n.out[0], n.in[2], n.in[3], n.out[1], n.out[2], n.out[3], n.out[0],
                            {n.in[0], n.in[1]});
  };
  rln.cpu = [](KernelCall& c) {
    int N, C;
    std::tie(N, C) = rows_cols(c.in[0].shape);
    dispatch_float(c.in[0].dtype, [&](auto tag) {
      using T = decltype(tag);
      kernels::cpu::residual_layernorm_forward<T>(c.out[0].as<T>(), c.out[1].as<T>(), c.out[2].as<T>(),
                                                  c.out[3].as<T>(), c.in[0].as<T>(), c.in[1].as<T>(),
                                                  c.in[2].as<T>(), c.in[3].as<T>(), N, C);
    });
  };
  register_op(rln);

  OpDef bwd;
  bwd.name = "layernorm_backward";
  bwd.infer = [](const Graph& g, const Node& n) {
    const Value& x = g.values[n.in[2]];
    const Value& w = g.values[n.in[3]];
    return std::vector<OutputSpec>{{x.shape, x.dtype}, {w.shape, w.dtype}, {w.shape, w.dtype}};
  };
  bwd.cpu = [](KernelCall& c) {
    int N, C;
    std::tie(N, C) = rows_cols(c.in[2].shape);
    dispatch_float(c.in[2].dtype, [&](auto tag) {
      using T = decltype(tag);
      kernels::cpu::layernorm_backward<T>(c.out[0].as<T>(), c.out[1].as<T>(), c.out[2].as<T>(), c.in[0].as<T>(),
                                          c.in[1].as<T>(), c.in[2].as<T>(), c.in[3].as<T>(), c.in[4].as<T>(),
                                          c.in[5].as<T>(), N, C);
    });
  };
  register_op(bwd);
}

}  // namespace ferry
