// engine/optim/adamw.cpp
#include "engine/optim/adamw.h"

#include <cmath>

#include "base/error.h"
#include "kernels/adamw.h"

namespace ferry {

AdamW::AdamW(const Graph& g, Executor& ex, AdamWConfig cfg) : ex_(ex), cfg_(cfg) {
  FERRY_CHECK(ex.backend().device() == Device::CPU, "AdamW on this backend is not built yet");
  FERRY_CHECK(g.values.empty() || g.params.empty() || g.values[g.params[0].value].dtype == DType::F32,
              "AdamW updates f32 parameters");
  bool previous_in_last = false;  // the parameter before this one ended the last segment
  for (const ParamInfo& p : g.params) {
    if (!p.trainable) {
      previous_in_last = false;
      continue;
    }
    AdamWSegment s{p.storage, static_cast<size_t>(p.storage_numel), p.lr_scale,
                   p.weight_decay ? cfg.weight_decay : 0.0f};
    if (previous_in_last) {
      AdamWSegment& last = segments_.back();
      if (last.lr_scale == s.lr_scale && last.weight_decay == s.weight_decay) {
        last.size = s.offset + s.size - last.offset;  // across the alignment gap
        continue;
      }
    }
    segments_.push_back(s);
    previous_in_last = true;
  }
  m_.assign(static_cast<size_t>(g.storage_size()), 0.0f);
  v_.assign(m_.size(), 0.0f);
}

double AdamW::grad_norm() const {
  const float* grads = ex_.grads().as<float>();
  double sq = 0;
  for (const auto& s : segments_) sq += kernels::cpu::grad_norm_squared<float>(grads + s.offset, s.size);
  return std::sqrt(sq);
}

double AdamW::step(float lr) {
  const double norm = grad_norm();
  float scale = 1.0f;
  if (cfg_.grad_clip > 0 && norm > cfg_.grad_clip) scale = static_cast<float>(cfg_.grad_clip / (norm + 1e-6));
  ++step_;
  float* params = ex_.params().as<float>();
  const float* grads = ex_.grads().as<float>();
  for (const auto& s : segments_) {
    kernels::cpu::AdamWHyper h{lr * s.lr_scale, cfg_.beta1, cfg_.beta2, cfg_.eps, s.weight_decay, step_, scale};
    kernels::cpu::adamw_update(params + s.offset, m_.data() + s.offset, v_.data() + s.offset, grads + s.offset,
                               s.size, h);
  }
  return norm;
}

}  // namespace ferry
