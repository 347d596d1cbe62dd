// engine/ops/cross_entropy.cpp — fused softmax + cross-entropy, the usual loss node.
//   cross_entropy(logits [...,L], targets [...] i32) -> (losses [...], loss [1], dlogits [...,L])
// attrs: scale (the loss weight: 1/grad_accum, a task weight), ignore_index, classes (the first
// `classes` of the L columns are the classes, the rest vocabulary padding that never enters the
// loss and gets a zero gradient; absent or 0: all L, cross_entropy_classes below).
// Optional third input, label_count (i32 [1]): the number of labelled rows of the global batch that
// this graph's rows are a share of (data parallelism, set by the runner each step). The loss is then
// this share of the global mean, Σ losses / label_count, and dlogits divides by label_count instead of
// the local count: summed over the ranks, both equal one process with the whole batch.
// The forward pass writes dlogits = scale · ∂mean_loss/∂logits in the same sweep (when training), over
// the logits' memory; the backward rule hands that tensor on. So the loss must be the root of
// autodiff (its incoming gradient is the seed), which is checked.
#include "engine/autodiff.h"
#include "engine/ops/ops.h"
#include "kernels/cross_entropy.h"

namespace ferry {

int cross_entropy_classes(const Node& n, int64_t columns) {
  const int classes = n.attrs.i("classes", 0);
  return classes > 0 ? classes : static_cast<int>(columns);
}

void register_cross_entropy_ops() {
  OpDef ce;
  ce.name = "cross_entropy";
  ce.infer = [](const Graph& g, const Node& n) {
    const Value& logits = g.values[n.in[0]];
    const Value& targets = g.values[n.in[1]];
    Shape rows(logits.shape.begin(), logits.shape.end() - 1);
    FERRY_CHECK(targets.dtype == DType::I32 && targets.shape == rows, "cross_entropy targets must be i32 ",
                shape_str(rows));
    if (n.in.size() > 2 && n.in[2] >= 0)
      FERRY_CHECK(g.values[n.in[2]].dtype == DType::I32 && numel(g.values[n.in[2]].shape) == 1,
                  "cross_entropy label_count must be one i32");
    FERRY_CHECK(n.attrs.i("classes", 0) >= 0 && n.attrs.i("classes", 0) <= logits.shape.back(), "cross_entropy: ",
                n.attrs.i("classes", 0), " classes in rows of ", logits.shape.back());
    // Losses stay fp32 under bf16 logits; the logits' gradient has the logits' dtype (written over them).
    const DType loss_t = statistics_dtype(logits.dtype);
    return std::vector<OutputSpec>{{rows, loss_t}, {{1}, loss_t}, {logits.shape, logits.dtype}};
  };
  ce.backward = [](Autodiff& ad, int i) {
    const Node& n = ad.node(i);
    FERRY_CHECK(ad.grad_of(n.out[1]) == Autodiff::kSeed && ad.grad_of(n.out[0]) == -1,
                "cross_entropy must be the loss autodiff starts from");
    if (ad.needs_grad(n.in[0])) ad.contribute(n.in[0], n.out[2]);
  };
  ce.cpu = [](KernelCall& c) {
    int N, L;
    std::tie(N, L) = rows_cols(c.in[0].shape);
    const int V = cross_entropy_classes(c.node, L);
    const int ignore = c.node.attrs.i("ignore_index", -1);
    // share = local labelled rows / global ones (1 without a label count).
    double share = 1.0;
    if (c.in.size() > 2 && c.in[2]) {
      const int32_t global = *c.in[2].as<int32_t>();
      int64_t local = 0;
      for (int r = 0; r < N; ++r) local += c.in[1].as<int32_t>()[r] != ignore;
      FERRY_CHECK(global >= local, "cross_entropy: label_count ", global, " below this batch's ", local, " labels");
      share = global > 0 ? static_cast<double>(local) / static_cast<double>(global) : 0.0;
    }
    dispatch_float(c.in[0].dtype, [&](auto tag) {
      using T = decltype(tag);
      T* dlogits = c.training ? c.out[2].as<T>() : nullptr;
      const T mean = kernels::cpu::cross_entropy_forward_backward<T>(
          c.out[0].as<T>(), dlogits, c.in[0].as<T>(), c.in[1].as<int32_t>(), N, V, L,
          static_cast<T>(c.node.attrs.get("scale", 1.0) * share), ignore);
      *c.out[1].as<T>() = static_cast<T>(mean * share);
    });
  };
  ce.inplace_out = 2;
  ce.inplace_in = 0;
  register_op(ce);
}

}  // namespace ferry
