// engine/optim/adamw.cpp
#include "engine/optim/adamw.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"

namespace ferry {

ShardRange optimizer_shard(size_t n, int ranks, int rank) {
  FERRY_CHECK(ranks >= 1 && rank >= 0 && rank < ranks, "shard ", rank, " of ", ranks);
  const size_t per = (n + static_cast<size_t>(ranks) - 1) / static_cast<size_t>(ranks);
  return {per * static_cast<size_t>(rank), per * static_cast<size_t>(rank + 1)};
}

size_t params_storage_end(const Graph& g, int n_params) {
  if (n_params <= 0) return 0;
  const ParamInfo& last = g.params[static_cast<size_t>(n_params) - 1];
  return last.storage + static_cast<size_t>(last.storage_numel);
}

AdamWTable adamw_table(const Graph& g, int n_params, const std::vector<bool>& owned, ShardRange range,
                       const AdamWConfig& cfg) {
  FERRY_CHECK(n_params >= 0 && n_params <= static_cast<int>(g.params.size()), "optimizer over ", n_params,
              " of ", g.params.size(), " parameters");
  FERRY_CHECK(owned.empty() || static_cast<int>(owned.size()) == n_params, "owned flags for ", owned.size(),
              " of ", n_params, " parameters");
  const size_t end = params_storage_end(g, n_params);
  AdamWTable t;
  t.range = range;
  t.end = std::max(range.begin, std::min(range.end, end));
  const ShardRange covered{range.begin, t.end};
  // Parameters in storage order; each spans up to the next one's start (its alignment gap).
  std::vector<int> order(static_cast<size_t>(n_params));
  for (int p = 0; p < n_params; ++p) order[static_cast<size_t>(p)] = p;
  std::sort(order.begin(), order.end(), [&](int a, int b) { return g.params[a].storage < g.params[b].storage; });
  for (size_t k = 0; k < order.size(); ++k) {
    const ParamInfo& p = g.params[order[k]];
    const size_t p_end = k + 1 < order.size() ? g.params[order[k + 1]].storage : end;
    const size_t b = std::max(p.storage, covered.begin), e = std::min(p_end, covered.end);
    if (b >= e) continue;
    const bool frozen = !p.trainable || p.lr_scale == 0.0f;
    const AdamWSegment s{b, frozen ? 0.0f : p.lr_scale, !frozen && p.weight_decay ? cfg.weight_decay : 0.0f};
    const uint8_t counted = !frozen && (owned.empty() || owned[order[k]]);
    if (!t.segments.empty() && t.segments.back().lr_scale == s.lr_scale &&
        t.segments.back().weight_decay == s.weight_decay && t.counted.back() == counted)
      continue;  // the run goes on
    t.segments.push_back(s);
    t.counted.push_back(counted);
  }
  return t;
}

float clip_scale(double norm, float grad_clip) {
  if (grad_clip > 0 && norm > grad_clip) return static_cast<float>(grad_clip / (norm + 1e-6));
  return 1.0f;
}

AdamW::AdamW(AdamWTable table, AdamWConfig cfg) : cfg_(cfg), table_(std::move(table)) {
  m_.assign(table_.range.size(), 0.0f);
  v_.assign(m_.size(), 0.0f);
}

AdamW::AdamW(const Graph& g, AdamWConfig cfg)
    : AdamW(adamw_table(g, static_cast<int>(g.params.size()), {},
                        {0, params_storage_end(g, static_cast<int>(g.params.size()))}, cfg),
            cfg) {}

double AdamW::norm_squared(const float* grads) const {
  double sq = 0;
  for (size_t i = 0; i < table_.segments.size(); ++i) {
    if (!table_.counted[i]) continue;
    const size_t b = table_.segments[i].begin;
    sq += kernels::cpu::grad_norm_squared<float>(grads + b, table_.segment_end(i) - b);
  }
  return sq;
}

void AdamW::update(float* params, const float* grads, float lr, float grad_scale) {
  ++step_;
  for (size_t i = 0; i < table_.segments.size(); ++i) {
    const AdamWSegment& s = table_.segments[i];
    if (s.lr_scale == 0.0f) continue;  // frozen: values and moments as they are
    const kernels::cpu::AdamWHyper h{lr * s.lr_scale, cfg_.beta1, cfg_.beta2, cfg_.eps, s.weight_decay, step_,
                                     grad_scale};
    const size_t at = s.begin - table_.range.begin;
    kernels::cpu::adamw_update(params + s.begin, m_.data() + at, v_.data() + at, grads + s.begin,
                               table_.segment_end(i) - s.begin, h);
  }
}

double AdamW::step(float* params, const float* grads, float lr) {
  const double norm = std::sqrt(norm_squared(grads));
  update(params, grads, lr, clip_scale(norm, cfg_.grad_clip));
  return norm;
}

}  // namespace ferry
