// parallel/tensor_parallel_ops.cpp — the ops the tensor-parallel rewrite inserts, each forward rule
// next to its backward (the conjugate pairs of Megatron's mappings):
//   tp_copy(x) -> y            forward identity         backward: all-reduce of dy (tp_all_reduce)
//   tp_reduce(x) -> y          forward all-reduce       backward: identity
//   tp_all_reduce(x) -> y      the all-reduce itself (the kernel of both directions)
//   vocab_parallel_embedding(tokens, wte_shard, wpe?) -> out        rows outside the shard give 0
//   vocab_parallel_embedding_backward(dout, tokens) -> (dwte_shard, dwpe)   accumulating
//   vocab_parallel_cross_entropy(logits_shard, targets, label_count?) -> (losses, loss, dlogits_shard)
// Their CUDA kernels: parallel/tensor_parallel_ops_cuda.cpp.
// attrs: group (collective_groups.h), vocab_start (first vocabulary row of this rank's shard);
// the cross-entropy takes scale, ignore_index and classes (the whole vocabulary's real size) like
// cross_entropy and, like it, writes the logits' gradient in its forward pass and must be the root
// of autodiff. Its optional third input is cross_entropy's label_count (i32 [1], data parallelism
// beside TP: the global count of labelled rows, set by the runner each step); the loss and the
// gradient then divide by it instead of the local count.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>

#include "engine/autodiff.h"
#include "engine/ops/ops.h"
#include "kernels/cross_entropy.h"
#include "kernels/embedding.h"
#include "parallel/device_collectives.h"
#include "parallel/tensor_parallel.h"

namespace ferry::parallel {

namespace {

namespace kcpu = ferry::kernels::cpu;

template <typename T>
constexpr DType comm_type() {
  return std::is_same_v<T, float> ? DType::f32 : DType::f64;
}

void all_reduce_kernel(KernelCall& c) {
  if (c.out[0].data != c.in[0].data) std::memcpy(c.out[0].data, c.in[0].data, c.in[0].nbytes());
  dispatch_float(c.in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    group_collectives(c.backend, c.node.attrs.i("group"))
        .all_reduce(c.out[0].data, static_cast<size_t>(c.out[0].numel()), comm_type<T>(), ReduceOp::sum);
  });
}

std::vector<OutputSpec> same_as_input(const Graph& g, const Node& n) {
  const Value& x = g.values[n.in[0]];
  return {{x.shape, x.dtype}};
}

OpDef identity_shaped(const char* name) {
  OpDef d;
  d.name = name;
  d.infer = same_as_input;
  d.inplace_out = 0;
  d.inplace_in = 0;
  return d;
}

// The vocabulary-parallel cross-entropy: the reference passes (kernels/cross_entropy.h) with the
// row maxima, then the exp-sums and target logits, all-reduced over the group between them.
// Rows have L columns, the first `valid` of which are real classes (the last ranks' shards end in
// vocabulary padding, or are all padding): the rest never enter the loss and get a zero gradient.
template <typename T>
T vocab_parallel_cross_entropy(T* losses, T* dlogits, const T* logits, const int32_t* targets, int N, int L, int valid,
                               int start, T scale, int32_t ignore_index, int64_t label_count,
                               const GroupCollectives& comm) {
  std::vector<T> row_max(N), sums(2 * static_cast<size_t>(N));
  kcpu::vocab_parallel_cross_entropy_row_max<T>(row_max.data(), logits, N, valid, L);
  comm.all_reduce(row_max.data(), row_max.size(), comm_type<T>(), ReduceOp::max);
  kcpu::vocab_parallel_cross_entropy_sums<T>(sums.data(), logits, targets, row_max.data(), N, valid, L, start,
                                             ignore_index);
  comm.all_reduce(sums.data(), sums.size(), comm_type<T>(), ReduceOp::sum);
  return kcpu::vocab_parallel_cross_entropy_finish<T>(losses, dlogits, logits, targets, row_max.data(), sums.data(), N,
                                                      valid, L, start, scale, ignore_index, label_count);
}

void register_all_ops() {
  OpDef all_reduce = identity_shaped("tp_all_reduce");
  all_reduce.cpu = all_reduce_kernel;
  register_op(all_reduce);

  // Identity forward; the gradient of a replicated input is the sum over the ranks that used it.
  OpDef copy = identity_shaped("tp_copy");
  copy.backward = [](Autodiff& ad, int i) {
    const Node& n = ad.node(i);
    if (!ad.needs_grad(n.in[0])) return;
    ad.contribute(n.in[0], ad.emit("tp_all_reduce", {ad.grad_of(n.out[0])}, n.attrs, {Graph::kNew})[0]);
  };
  copy.cpu = [](KernelCall& c) {
    if (c.out[0].data != c.in[0].data) std::memcpy(c.out[0].data, c.in[0].data, c.in[0].nbytes());
  };
  register_op(copy);

  // All-reduce forward; every rank's partial sum receives the whole (replicated) gradient.
  OpDef reduce = identity_shaped("tp_reduce");
  reduce.backward = [](Autodiff& ad, int i) {
    const Node& n = ad.node(i);
    if (ad.needs_grad(n.in[0])) ad.contribute(n.in[0], ad.grad_of(n.out[0]));
  };
  reduce.cpu = all_reduce_kernel;
  register_op(reduce);

  OpDef emb;
  emb.name = "vocab_parallel_embedding";
  emb.infer = [](const Graph& g, const Node& n) {
    const Value& tok = g.values[n.in[0]];
    const Value& wte = g.values[n.in[1]];
    FERRY_CHECK(tok.dtype == ferry::DType::I32 && tok.shape.size() == 2, "vocab_parallel_embedding tokens must be i32 [B,T]");
    if (n.in[2] >= 0) FERRY_CHECK(g.values[n.in[2]].shape[1] == wte.shape[1], "vocab_parallel_embedding wpe");
    return std::vector<OutputSpec>{{{tok.shape[0], tok.shape[1], wte.shape[1]}, wte.dtype}};
  };
  emb.backward = [](Autodiff& ad, int i) {
    const Node& n = ad.node(i);
    const int dwte = ad.param_grad(n.in[1]);
    const int dwpe = n.in[2] >= 0 ? ad.param_grad(n.in[2]) : Graph::kSkip;
    if (dwte == Graph::kSkip && dwpe == Graph::kSkip) return;
    const Graph& g = ad.graph();
    Attrs a = n.attrs;
    a.values["vocab"] = double(g.values[n.in[1]].shape[0]);
    a.values["channels"] = double(g.values[n.in[1]].shape[1]);
    a.values["max_seq"] = n.in[2] >= 0 ? double(g.values[n.in[2]].shape[0]) : 1.0;
    ad.emit("vocab_parallel_embedding_backward", {ad.grad_of(n.out[0]), n.in[0]}, a, {dwte, dwpe});
  };
  emb.cpu = [](KernelCall& c) {
    const auto& s = c.in[0].shape;
    dispatch_float(c.out[0].dtype, [&](auto tag) {
      using T = decltype(tag);
      kcpu::vocab_parallel_embedding_forward<T>(c.out[0].as<T>(), c.in[0].as<int32_t>(), c.in[1].as<T>(), c.in[2] ? c.in[2].as<T>() : nullptr,
                           static_cast<int>(s[0]), static_cast<int>(s[1]), static_cast<int>(c.in[1].shape[1]),
                           c.node.attrs.i("vocab_start"), static_cast<int>(c.in[1].shape[0]));
    });
  };
  register_op(emb);

  OpDef emb_bwd;
  emb_bwd.name = "vocab_parallel_embedding_backward";
  emb_bwd.infer = [](const Graph& g, const Node& n) {
    const ferry::DType t = g.values[n.in[0]].dtype;
    const int64_t C = n.attrs.i("channels");
    return std::vector<OutputSpec>{{{n.attrs.i("vocab"), C}, t}, {{n.attrs.i("max_seq"), C}, t}};
  };
  emb_bwd.cpu = [](KernelCall& c) {
    const auto& s = c.in[1].shape;
    dispatch_float(c.in[0].dtype, [&](auto tag) {
      using T = decltype(tag);
      kcpu::vocab_parallel_embedding_backward<T>(c.out[0].as<T>(), c.out[1].as<T>(), c.in[0].as<T>(), c.in[1].as<int32_t>(),
                            static_cast<int>(s[0]), static_cast<int>(s[1]), c.node.attrs.i("channels"),
                            c.node.attrs.i("vocab_start"), c.node.attrs.i("vocab"));
    });
  };
  register_op(emb_bwd);

  OpDef ce;
  ce.name = "vocab_parallel_cross_entropy";
  ce.infer = [](const Graph& g, const Node& n) {
    const Value& logits = g.values[n.in[0]];
    const Value& targets = g.values[n.in[1]];
    Shape rows(logits.shape.begin(), logits.shape.end() - 1);
    FERRY_CHECK(targets.dtype == ferry::DType::I32 && targets.shape == rows, "vocab_parallel_cross_entropy targets");
    if (n.in.size() > 2 && n.in[2] >= 0)
      FERRY_CHECK(g.values[n.in[2]].dtype == ferry::DType::I32 && numel(g.values[n.in[2]].shape) == 1,
                  "vocab_parallel_cross_entropy label_count must be one i32");
    // Losses stay fp32 under bf16 logits (cross_entropy's rule); the gradient has the logits' dtype.
    const ferry::DType loss_t = statistics_dtype(logits.dtype);
    return std::vector<OutputSpec>{{rows, loss_t}, {{1}, loss_t}, {logits.shape, logits.dtype}};
  };
  ce.backward = [](Autodiff& ad, int i) {
    const Node& n = ad.node(i);
    FERRY_CHECK(ad.grad_of(n.out[1]) == Autodiff::kSeed && ad.grad_of(n.out[0]) == -1,
                "vocab_parallel_cross_entropy must be the loss autodiff starts from");
    if (ad.needs_grad(n.in[0])) ad.contribute(n.in[0], n.out[2]);
  };
  ce.cpu = [](KernelCall& c) {
    int N, L;
    std::tie(N, L) = rows_cols(c.in[0].shape);
    const int start = c.node.attrs.i("vocab_start");
    // "classes" is the whole vocabulary's size (copied from the single-process cross_entropy).
    const int classes = c.node.attrs.i("classes", 0);
    const int valid = classes > 0 ? std::clamp(classes - start, 0, L) : L;
    const int32_t ignore = c.node.attrs.i("ignore_index", -1);
    int64_t label_count = -1;
    if (c.in.size() > 2 && c.in[2]) {
      label_count = *c.in[2].as<int32_t>();
      int64_t local = 0;
      for (int r = 0; r < N; ++r) local += c.in[1].as<int32_t>()[r] != ignore;
      FERRY_CHECK(label_count >= local, "vocab_parallel_cross_entropy: label_count ", label_count,
                  " below this batch's ", local, " labels");
    }
    dispatch_float(c.in[0].dtype, [&](auto tag) {
      using T = decltype(tag);
      *c.out[1].as<T>() = vocab_parallel_cross_entropy<T>(
          c.out[0].as<T>(), c.training ? c.out[2].as<T>() : nullptr, c.in[0].as<T>(), c.in[1].as<int32_t>(), N, L,
          valid, start, static_cast<T>(c.node.attrs.get("scale", 1.0)), ignore, label_count,
          group_collectives(c.backend, c.node.attrs.i("group")));
    });
  };
  ce.inplace_out = 2;
  ce.inplace_in = 0;
  register_op(ce);

  attach_tensor_parallel_cuda_kernels();
}

}  // namespace

void register_tensor_parallel_ops() {
  static std::once_flag once;
  std::call_once(once, register_all_ops);
}

}  // namespace ferry::parallel
