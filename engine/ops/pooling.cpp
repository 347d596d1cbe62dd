// engine/ops/pooling.cpp — one vector per sequence out of a padded batch of token states, for
// sequence-classification heads; and `scale`, the constant multiplier LoRA's update path needs.
//   pool_tokens(x [B,T,C], lengths [B] i32) -> y [B,C]
//     attr mode: 0 first token, 1 last real token (position lengths[b]-1, GPT's summary token),
//                2 mean over the real tokens [0, lengths[b]).
//   pool_tokens_backward(dy [B,C], lengths) -> dx [B,T,C]   written (zeros at unpooled positions)
//   scale(x) -> s·x                                          attr s
//   sum_losses(l0 [1], l1 [1], ...) -> Σ w_k·l_k [1]          attrs w0, w1, ... (default 1)
//     the multi-task loss: each l_k is a cross_entropy loss whose dlogits its forward already wrote
//     (scaled by the same w_k), so the rule hands the autodiff seed to each of them; it must be
//     the root of autodiff, as cross_entropy itself must be.
// Padding sits at the end of each row, so a row's pooled vector reads only its real tokens: with the
// attention op's key lengths, what padding a batch holds never changes a prediction.
// The kernels are kernels/pooling.h's (CPU reference in kernels/cpu/pooling.cpp, CUDA twin attached
// by engine/cuda/cuda_ops.cpp).
#include <string>

#include "engine/autodiff.h"
#include "engine/ops/ops.h"
#include "kernels/pooling.h"

namespace ferry {

using kernels::kPoolFirst;
using kernels::kPoolMean;

void register_pooling_ops() {
  OpDef fwd;
  fwd.name = "pool_tokens";
  fwd.infer = [](const Graph& g, const Node& n) {
    const Value& x = g.values[n.in[0]];
    const Value& len = g.values[n.in[1]];
    FERRY_CHECK(x.shape.size() == 3, "pool_tokens input must be [B,T,C], got ", shape_str(x.shape));
    FERRY_CHECK(len.dtype == DType::I32 && len.shape == Shape{x.shape[0]}, "pool_tokens lengths must be i32 [B]");
    const int mode = n.attrs.i("mode");
    FERRY_CHECK(mode >= kPoolFirst && mode <= kPoolMean, "pool_tokens mode ", mode);
    return std::vector<OutputSpec>{{{x.shape[0], x.shape[2]}, x.dtype}};
  };
  fwd.backward = [](Autodiff& ad, int i) {
    const Node& n = ad.node(i);
    if (!ad.needs_grad(n.in[0])) return;
    Attrs a = n.attrs;
    a.values["seq_len"] = static_cast<double>(ad.graph().values[n.in[0]].shape[1]);
    auto d = ad.emit("pool_tokens_backward", {ad.grad_of(n.out[0]), n.in[1]}, a, {Graph::kNew});
    ad.contribute(n.in[0], d[0]);
  };
  fwd.cpu = [](KernelCall& c) {
    const auto& s = c.in[0].shape;
    dispatch_float(c.in[0].dtype, [&](auto tag) {
      using T = decltype(tag);
      kernels::cpu::pool_tokens_forward<T>(c.out[0].as<T>(), c.in[0].as<T>(), c.in[1].as<int32_t>(), int(s[0]),
                                           int(s[1]), int(s[2]), c.node.attrs.i("mode"));
    });
  };
  register_op(fwd);

  OpDef bwd;
  bwd.name = "pool_tokens_backward";
  bwd.infer = [](const Graph& g, const Node& n) {
    const Value& dy = g.values[n.in[0]];
    return std::vector<OutputSpec>{{{dy.shape[0], n.attrs.i("seq_len"), dy.shape[1]}, dy.dtype}};
  };
  bwd.cpu = [](KernelCall& c) {
    const auto& s = c.out[0].shape;
    dispatch_float(c.out[0].dtype, [&](auto tag) {
      using T = decltype(tag);
      kernels::cpu::pool_tokens_backward<T>(c.out[0].as<T>(), c.in[0].as<T>(), c.in[1].as<int32_t>(), int(s[0]),
                                            int(s[1]), int(s[2]), c.node.attrs.i("mode"));
    });
  };
  register_op(bwd);

  OpDef scale;
  scale.name = "scale";
  scale.infer = [](const Graph& g, const Node& n) {
    const Value& x = g.values[n.in[0]];
    return std::vector<OutputSpec>{{x.shape, x.dtype}};
  };
  scale.backward = [](Autodiff& ad, int i) {
    const Node& n = ad.node(i);
    if (!ad.needs_grad(n.in[0])) return;
    auto d = ad.emit("scale", {ad.grad_of(n.out[0])}, n.attrs, {Graph::kNew});
    ad.contribute(n.in[0], d[0]);
  };
  scale.cpu = [](KernelCall& c) {
    dispatch_float(c.in[0].dtype, [&](auto tag) {
      using T = decltype(tag);
      kernels::cpu::scale<T>(c.out[0].as<T>(), c.in[0].as<T>(), static_cast<T>(c.node.attrs.get("s", 1.0)),
                             static_cast<size_t>(c.in[0].numel()));
    });
  };
  register_op(scale);

  OpDef sum;
  sum.name = "sum_losses";
  sum.infer = [](const Graph& g, const Node& n) {
    FERRY_CHECK(!n.in.empty(), "sum_losses needs at least one loss");
    const Value& first = g.values[n.in[0]];
    for (int v : n.in)
      FERRY_CHECK(g.values[v].shape == Shape{1} && g.values[v].dtype == first.dtype, "sum_losses inputs must be [1] ",
                  dtype_name(first.dtype));
    return std::vector<OutputSpec>{{{1}, first.dtype}};
  };
  sum.backward = [](Autodiff& ad, int i) {
    const Node& n = ad.node(i);
    FERRY_CHECK(ad.grad_of(n.out[0]) == Autodiff::kSeed, "sum_losses must be the loss autodiff starts from");
    for (int v : n.in)
      if (ad.needs_grad(v)) ad.contribute(v, Autodiff::kSeed);
  };
  sum.cpu = [](KernelCall& c) {
    dispatch_float(c.out[0].dtype, [&](auto tag) {
      using T = decltype(tag);
      double total = 0;
      for (size_t k = 0; k < c.in.size(); ++k)
        total += c.node.attrs.get("w" + std::to_string(k), 1.0) * static_cast<double>(*c.in[k].as<T>());
      *c.out[0].as<T>() = static_cast<T>(total);
    });
  };
  register_op(sum);
}

}  // namespace ferry
