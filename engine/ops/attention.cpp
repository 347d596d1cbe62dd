// engine/ops/attention.cpp — multi-head self-attention over a packed qkv tensor.
//   attention(qkv [B,T,3C], key_lengths [B] i32?) -> (out [B,T,C], lse [B,NH,T])
//   attention_backward(dout, qkv, out, lse, key_lengths?) -> dqkv
// attrs: n_head, causal (1) or bidirectional (0).
#include "engine/autodiff.h"
#include "engine/ops/ops.h"
#include "kernels/attention.h"

namespace ferry {

namespace {
struct Dims {
  int B, T, NH, HS;
};
Dims dims_of(const Shape& qkv, int n_head) {
  const int C = static_cast<int>(qkv[2] / 3);
  return {static_cast<int>(qkv[0]), static_cast<int>(qkv[1]), n_head, C / n_head};
}
}  // namespace

void register_attention_ops() {
  OpDef fwd;
  fwd.name = "attention";
  fwd.infer = [](const Graph& g, const Node& n) {
    const Value& qkv = g.values[n.in[0]];
    const int nh = n.attrs.i("n_head");
    FERRY_CHECK(qkv.shape.size() == 3 && qkv.shape[2] % 3 == 0 && nh > 0 && (qkv.shape[2] / 3) % nh == 0,
                "attention qkv shape ", shape_str(qkv.shape));
    if (n.in.size() > 1 && n.in[1] >= 0)
      FERRY_CHECK(g.values[n.in[1]].dtype == DType::I32 && g.values[n.in[1]].shape == Shape{qkv.shape[0]},
                  "attention key_lengths must be i32 [B]");
    return std::vector<OutputSpec>{{{qkv.shape[0], qkv.shape[1], qkv.shape[2] / 3}, qkv.dtype},
                                   {{qkv.shape[0], nh, qkv.shape[1]}, statistics_dtype(qkv.dtype)}};
  };
  fwd.backward = [](Autodiff& ad, int i) {
    const Node& n = ad.node(i);
    if (!ad.needs_grad(n.in[0])) return;
    const int lengths = n.in.size() > 1 ? n.in[1] : -1;
    auto d = ad.emit("attention_backward", {ad.grad_of(n.out[0]), n.in[0], n.out[0], n.out[1], lengths}, n.attrs,
                     {Graph::kNew});
    ad.contribute(n.in[0], d[0]);
  };
  fwd.cpu = [](KernelCall& c) {
    const Dims d = dims_of(c.in[0].shape, c.node.attrs.i("n_head"));
    const int32_t* lengths = c.in.size() > 1 ? c.in[1].as<int32_t>() : nullptr;
    dispatch_float(c.in[0].dtype, [&](auto tag) {
      using T = decltype(tag);
      kernels::cpu::attention_forward<T>(c.out[0].as<T>(), c.out[1].as<T>(), c.in[0].as<T>(), lengths, d.B, d.T, d.NH,
                                         d.HS, c.node.attrs.flag("causal"));
    });
  };
  register_op(fwd);

  OpDef bwd;
  bwd.name = "attention_backward";
  bwd.infer = [](const Graph& g, const Node& n) {
    const Value& qkv = g.values[n.in[1]];
    return std::vector<OutputSpec>{{qkv.shape, qkv.dtype}};
  };
  bwd.cpu = [](KernelCall& c) {
    const Dims d = dims_of(c.in[1].shape, c.node.attrs.i("n_head"));
    dispatch_float(c.in[1].dtype, [&](auto tag) {
      using T = decltype(tag);
      kernels::cpu::attention_backward<T>(c.out[0].as<T>(), c.in[0].as<T>(), c.in[1].as<T>(), c.in[2].as<T>(),
                                          c.in[3].as<T>(), c.in[4].as<int32_t>(), d.B, d.T, d.NH, d.HS,
                                          c.node.attrs.flag("causal"));
    });
  };
  register_op(bwd);
}

}  // namespace ferry
