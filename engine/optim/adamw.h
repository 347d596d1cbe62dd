// engine/optim/adamw.h — AdamW over the flat parameter buffer, with global gradient-norm clipping.
//
// Parameters are grouped into contiguous segments of equal (learning-rate scale, weight decay,
// trainable): one kernel call per segment, and segments merge when neighbours agree (the usual GPT
// case is a handful). Offsets are the executor's storage order (graph.h): a segment spans the
// alignment gaps between the parameters it merges, whose zeros AdamW leaves at zero and which add
// exactly nothing to the norm. Moments are fp32 in flat buffers of Graph::storage_size elements.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/executor.h"

namespace ferry {

struct AdamWConfig {
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.1f;
  float grad_clip = 1.0f;  // max global L2 norm; 0 disables clipping
};

struct AdamWSegment {
  size_t offset = 0;
  size_t size = 0;
  float lr_scale = 1.0f;
  float weight_decay = 0.0f;
};

class AdamW {
 public:
  AdamW(const Graph& g, Executor& ex, AdamWConfig cfg);

  // One update at learning rate lr; returns the global gradient norm before clipping.
  double step(float lr);
  // Norm of the current gradients (trainable parameters only).
  double grad_norm() const;

  int steps_taken() const { return step_; }
  // Bytes of optimizer state, for the planner's fit check.
  static size_t state_bytes(const Graph& g) { return 2 * static_cast<size_t>(g.storage_size()) * sizeof(float); }

  // State in the storage order (LocalStep gathers the logical order for checkpoints).
  std::vector<float>& m() { return m_; }
  std::vector<float>& v() { return v_; }
  const std::vector<float>& m() const { return m_; }
  const std::vector<float>& v() const { return v_; }
  void set_steps_taken(int s) { step_ = s; }
  const std::vector<AdamWSegment>& segments() const { return segments_; }

 private:
  Executor& ex_;
  AdamWConfig cfg_;
  std::vector<AdamWSegment> segments_;
  std::vector<float> m_, v_;
  int step_ = 0;
};

}  // namespace ferry
