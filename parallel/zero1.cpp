// parallel/zero1.cpp
#include "parallel/zero1.h"

#include <algorithm>

#include "base/error.h"
#include "kernels/adamw.h"

namespace ferry::parallel {

ShardRange zero1_shard(size_t n, int dp, int d) {
  const size_t per = (n + dp - 1) / dp;
  return {per * d, per * (d + 1)};
}

ShardedAdamW::ShardedAdamW(const Graph& g, int n_params, const std::vector<bool>& owned, ShardRange shard,
                           AdamWConfig cfg)
    : cfg_(cfg), shard_(shard) {
  FERRY_CHECK(static_cast<int>(owned.size()) == n_params, "owned flags");
  // Offsets are the storage order (engine/graph.h). A segment or norm range extends over the
  // alignment gap to the next parameter when that one joins it (the gap's zeros stay zero and add
  // nothing to the norm), so segments are the same runs of parameters as without the gaps.
  int last_segment_param = -2, last_norm_param = -2;
  for (int p = 0; p < n_params; ++p) {
    const ParamInfo& info = g.params[p];
    if (!info.trainable) continue;
    const size_t b = std::max(info.storage, shard.begin);
    const size_t e = std::min(info.storage + static_cast<size_t>(info.storage_numel), shard.end);
    if (b >= e) continue;
    const AdamWSegment s{b, e - b, info.lr_scale, info.weight_decay ? cfg.weight_decay : 0.0f};
    if (last_segment_param == p - 1 && segments_.back().lr_scale == s.lr_scale &&
        segments_.back().weight_decay == s.weight_decay)
      segments_.back().size = e - segments_.back().offset;
    else
      segments_.push_back(s);
    last_segment_param = p;
    if (owned[p]) {
      if (last_norm_param == p - 1)
        norm_ranges_.back().size = e - norm_ranges_.back().begin;
      else
        norm_ranges_.push_back({b, e - b});
      last_norm_param = p;
    }
  }
  m_.assign(shard.size(), 0.0f);
  v_.assign(shard.size(), 0.0f);
}

double ShardedAdamW::owned_norm_squared(const float* grads) const {
  double sq = 0;
  for (const Range& r : norm_ranges_) sq += kernels::cpu::grad_norm_squared<float>(grads + r.begin, r.size);
  return sq;
}

void ShardedAdamW::update(float* params, const float* grads, float lr, float grad_scale) {
  ++step_;
  for (const AdamWSegment& s : segments_) {
    kernels::cpu::AdamWHyper h{lr * s.lr_scale, cfg_.beta1, cfg_.beta2, cfg_.eps, s.weight_decay, step_, grad_scale};
    const size_t at = s.offset - shard_.begin;
    kernels::cpu::adamw_update(params + s.offset, m_.data() + at, v_.data() + at, grads + s.offset, s.size, h);
  }
}

}  // namespace ferry::parallel
