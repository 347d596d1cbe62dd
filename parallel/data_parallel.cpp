// parallel/data_parallel.cpp
#include "parallel/data_parallel.h"

#include <algorithm>

#include "base/error.h"

namespace ferry::parallel {

GradientBuckets::GradientBuckets(const Graph& g, int n_params, size_t bucket_elems, Communicator& dp) : dp_(dp) {
  FERRY_CHECK(bucket_elems > 0, "bucket size");
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
    if (buckets_.empty() || buckets_.back().size >= bucket_elems) buckets_.push_back({info.storage, 0, -1, false});
    Bucket& b = buckets_.back();
    FERRY_CHECK(b.begin + b.size <= info.storage, "parameters out of storage order");
    b.size = info.storage + static_cast<size_t>(info.storage_numel) - b.begin;
    b.last_writer = std::max(b.last_writer, last_writer[p]);
  }
}

void GradientBuckets::begin_step() {
  for (Bucket& b : buckets_) b.done = false;
  reduced_early_ = 0;
}

void GradientBuckets::reduce(Bucket& b, float* grads) {
  if (b.size) dp_.all_reduce(grads + b.begin, b.size, DType::f32, ReduceOp::sum);
  b.done = true;
}

void GradientBuckets::on_node(int node, float* grads) {
  // Every rank runs the same schedule, so every rank reduces the buckets in the same order.
  for (auto it = buckets_.rbegin(); it != buckets_.rend(); ++it)
    if (!it->done && it->last_writer == node) {
      reduce(*it, grads);
      ++reduced_early_;
    }
}

void GradientBuckets::finish(float* grads) {
  for (auto it = buckets_.rbegin(); it != buckets_.rend(); ++it)
    if (!it->done) reduce(*it, grads);
}

}  // namespace ferry::parallel
