// engine/ops/embedding.cpp — token + position embedding.
//   embedding(tokens [B,T] i32, wte [V,C], wpe [maxT,C]) -> out [B,T,C]
//   embedding_backward(dout, tokens) -> (dwte, dwpe)   accumulating
#include "engine/autodiff.h"
#include "engine/ops/ops.h"
#include "kernels/embedding.h"

namespace ferry {

void register_embedding_ops() {
  OpDef fwd;
  fwd.name = "embedding";
  fwd.infer = [](const Graph& g, const Node& n) {
    const Value& tok = g.values[n.in[0]];
    const Value& wte = g.values[n.in[1]];
    const Value& wpe = g.values[n.in[2]];
    FERRY_CHECK(tok.dtype == DType::I32 && tok.shape.size() == 2, "embedding tokens must be i32 [B,T]");
    FERRY_CHECK(wpe.shape[1] == wte.shape[1] && tok.shape[1] <= wpe.shape[0], "embedding shapes");
    return std::vector<OutputSpec>{{{tok.shape[0], tok.shape[1], wte.shape[1]}, wte.dtype}};
  };
  fwd.backward = [](Autodiff& ad, int i) {
    const Node& n = ad.node(i);
    const int dout = ad.grad_of(n.out[0]);
    const int dwte = ad.param_grad(n.in[1]);
    const int dwpe = ad.param_grad(n.in[2]);
    if (dwte == Graph::kSkip && dwpe == Graph::kSkip) return;
    const Graph& g = ad.graph();
    const Shape& wte = g.values[n.in[1]].shape;
    const Shape& wpe = g.values[n.in[2]].shape;
    ad.emit("embedding_backward", {dout, n.in[0]},
            {{"vocab", double(wte[0])}, {"max_seq", double(wpe[0])}, {"channels", double(wte[1])}}, {dwte, dwpe});
  };
  fwd.cpu = [](KernelCall& c) {
    const auto& s = c.in[0].shape;
    dispatch_float(c.out[0].dtype, [&](auto tag) {
      using T = decltype(tag);
      kernels::cpu::embedding_forward<T>(c.out[0].as<T>(), c.in[0].as<int32_t>(), c.in[1].as<T>(), c.in[2].as<T>(),
                                         static_cast<int>(s[0]), static_cast<int>(s[1]),
                                         static_cast<int>(c.in[1].shape[1]));
    });
  };
  register_op(fwd);

  OpDef bwd;
  bwd.name = "embedding_backward";
  bwd.infer = [](const Graph& g, const Node& n) {
    // Outputs are the parameter gradients they accumulate into; attrs carry the parameter shapes.
    const DType t = g.values[n.in[0]].dtype;
    const int64_t C = n.attrs.i("channels");
    return std::vector<OutputSpec>{{{n.attrs.i("vocab"), C}, t}, {{n.attrs.i("max_seq"), C}, t}};
  };
  bwd.cpu = [](KernelCall& c) {
    const auto& s = c.in[1].shape;
    const Tensor& ref = c.out[0] ? c.out[0] : c.out[1];
    dispatch_float(ref.dtype, [&](auto tag) {
      using T = decltype(tag);
      kernels::cpu::embedding_backward<T>(c.out[0].as<T>(), c.out[1].as<T>(), c.in[0].as<T>(), c.in[1].as<int32_t>(),
                                          static_cast<int>(s[0]), static_cast<int>(s[1]),
                                          static_cast<int>(c.in[0].shape[2]),
                                          c.out[0] ? static_cast<int>(c.out[0].shape[0]) : 0);
    });
  };
  register_op(bwd);
}

}  // namespace ferry
