// parallel/data_parallel.cpp
#include "parallel/data_parallel.h"

#include <algorithm>
#include <climits>

#include "base/error.h"

namespace ferry::parallel {

DpSchedule make_dp_schedule(const Graph& g, int n_params, size_t bucket_elems) {
  FERRY_CHECK(bucket_elems > 0, "bucket size");
  DpSchedule s;
  // The last backward node that writes each parameter's gradient.
  std::vector<int> last_writer(n_params, -1);
  for (int i = g.num_forward_nodes; i < static_cast<int>(g.nodes.size()); ++i)
    for (int v : g.nodes[i].out)
      if (v >= 0 && g.values[v].role == ValueRole::ParamGrad && g.values[v].param < n_params)
        last_writer[g.values[v].param] = i;
  // Ranges of the storage order (engine/graph.h): a bucket spans the alignment gaps between its
  // parameters (zeros on every rank, so summing them changes nothing).
  for (int p = 0; p < n_params; ++p) {
    const ParamInfo& info = g.params[p];
    if (s.buckets.empty() || s.buckets.back().size >= bucket_elems) s.buckets.push_back({info.storage, 0, -1});
    GradientBucket& b = s.buckets.back();
    FERRY_CHECK(b.begin + b.size <= info.storage, "parameters out of storage order");
    b.size = info.storage + static_cast<size_t>(info.storage_numel) - b.begin;
    b.last_writer = std::max(b.last_writer, last_writer[p]);
  }
  // Issue order: by the node after which the bucket is complete (backward runs nodes in index
  // order), buckets completed by the same node last first; the unwritten ones after backward.
  // Every rank builds the same schedule, so every rank issues the same collectives in the same order.
  std::vector<int> order;
  for (int k = static_cast<int>(s.buckets.size()) - 1; k >= 0; --k) order.push_back(k);
  auto when = [&](int k) { return s.buckets[k].last_writer < 0 ? INT_MAX : s.buckets[k].last_writer; };
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return when(a) < when(b); });
  for (int k : order) {
    const int at = s.buckets[k].last_writer;
    s.ops.push_back({at, DpOpKind::record, Queue::compute, k});
    s.ops.push_back({at, DpOpKind::wait, Queue::comm, k});
    s.ops.push_back({at, DpOpKind::widen, Queue::comm, k});
    s.ops.push_back({at, DpOpKind::all_reduce, Queue::comm, k});
    s.ops.push_back({at, DpOpKind::narrow, Queue::comm, k});
  }
  s.done_event = static_cast<int>(s.buckets.size());
  s.ops.push_back({-1, DpOpKind::record, Queue::comm, s.done_event});
  s.ops.push_back({-1, DpOpKind::wait, Queue::compute, s.done_event});
  return s;
}

std::string to_string(const DpOp& op) {
  static const char* const kinds[] = {"record", "wait", "widen", "all_reduce", "narrow"};
  const bool event = op.kind == DpOpKind::record || op.kind == DpOpKind::wait;
  return str_cat(op.after_node < 0 ? std::string("after backward") : str_cat("after node ", op.after_node), ": ",
                 kinds[static_cast<int>(op.kind)], " ", queue_name(op.queue), " ", event ? "E" : "bucket ", op.index);
}

GradientBuckets::GradientBuckets(const Graph& g, int n_params, size_t bucket_elems, Communicator& dp)
    : s_(make_dp_schedule(g, n_params, bucket_elems)), dp_(dp), widened_(s_.buckets.size(), nullptr) {}

void GradientBuckets::begin_step(GradientQueues& queues) {
  queues_ = &queues;
  next_ = 0;
  reduced_early_ = 0;
  std::fill(widened_.begin(), widened_.end(), nullptr);
}

void GradientBuckets::issue(const DpOp& op, bool early) {
  if (op.kind == DpOpKind::record) return queues_->record(op.queue, op.index);
  if (op.kind == DpOpKind::wait) return queues_->wait(op.queue, op.index);
  const GradientBucket& b = s_.buckets[static_cast<size_t>(op.index)];
  switch (op.kind) {
    case DpOpKind::widen: widened_[op.index] = queues_->widen(b.begin, b.size); return;
    case DpOpKind::all_reduce:
      FERRY_CHECK(widened_[op.index] != nullptr, "bucket ", op.index, " reduced before it was widened");
      if (b.size) dp_.all_reduce(widened_[op.index], b.size, DType::f32, ReduceOp::sum);
      reduced_early_ += early;
      return;
    case DpOpKind::narrow: return queues_->narrow(b.begin, b.size);
    default: return;
  }
}

void GradientBuckets::on_node(int node) {
  FERRY_CHECK(queues_ != nullptr, "gradient buckets used before begin_step");
  while (next_ < s_.ops.size() && s_.ops[next_].after_node >= 0 && s_.ops[next_].after_node <= node)
    issue(s_.ops[next_++], true);
}

void GradientBuckets::finish() {
  FERRY_CHECK(queues_ != nullptr, "gradient buckets used before begin_step");
  while (next_ < s_.ops.size()) issue(s_.ops[next_++], false);
  queues_ = nullptr;
}

GradientHooks GradientBuckets::hooks() {
  GradientHooks h;
  h.begin = [this](GradientQueues& q) { begin_step(q); };
  h.after_node = [this](int node) { on_node(node); };
  h.finish = [this] { finish(); };
  return h;
}

}  // namespace ferry::parallel
