// parallel/zero1.h — AdamW over one shard of a rank's flat parameter buffer.
//
// Without ZeRO the shard is the whole buffer of the model's parameters. With ZeRO-1 (Rajbhandari et
// al., 2020, stage 1) the buffer, padded to a multiple of dp, is cut into dp equal shards: the
// gradients are reduce-scattered over the DP group, DP rank d keeps AdamW's moments for shard d
// only and updates those parameters, and an all-gather gives every rank the whole buffer again.
// The update is elementwise, so the parameters equal plain data parallelism's.
//
// The global gradient norm (for clipping) is summed over the parameters this rank owns
// (param_layout.h) inside its shard; the caller all-reduces it over the ranks that together hold
// one copy of the model (and, with ZeRO, over the DP group).
#pragma once
#include <cstddef>
#include <vector>

#include "engine/graph.h"
#include "engine/optim/adamw.h"

namespace ferry::parallel {

struct ShardRange {
  size_t begin = 0;
  size_t end = 0;
  size_t size() const { return end - begin; }
};

// Shard `d` of `dp` over a buffer of n elements padded up to a multiple of dp.
ShardRange zero1_shard(size_t n, int dp, int d);

class ShardedAdamW {
 public:
  // Parameters [0, n_params) of g are the model's; owned[p] marks those counted in the norm.
  ShardedAdamW(const Graph& g, int n_params, const std::vector<bool>& owned, ShardRange shard, AdamWConfig cfg);

  // Σ g² over owned elements of the shard, in a fixed order; grads is the whole local buffer.
  double owned_norm_squared(const float* grads) const;
  // One update of the shard at learning rate lr; grad_scale carries clipping.
  void update(float* params, const float* grads, float lr, float grad_scale);

  const ShardRange& shard() const { return shard_; }
  int steps_taken() const { return step_; }
  void set_steps_taken(int s) { step_ = s; }
  // Moments of the shard: element i belongs to local flat offset shard().begin + i.
  std::vector<float>& m() { return m_; }
  std::vector<float>& v() { return v_; }
  const std::vector<float>& m() const { return m_; }
  const std::vector<float>& v() const { return v_; }

 private:
  struct Range {
    size_t begin, size;
  };
  AdamWConfig cfg_;
  ShardRange shard_;
  std::vector<AdamWSegment> segments_;  // offsets in the local flat buffer
  std::vector<Range> norm_ranges_;
  std::vector<float> m_, v_;
  int step_ = 0;
};

}  // namespace ferry::parallel
