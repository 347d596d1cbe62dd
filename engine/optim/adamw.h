// engine/optim/adamw.h — AdamW over a range of the flat parameter buffer, with global gradient-norm
// clipping: the one optimizer of every step runner.
//
// The segment table (AdamWTable) is built here and only here, for every layout and device: it
// covers a range of the executor's flat storage (engine/graph.h) — the whole buffer of the model's
// parameters in one process, one ZeRO-1 shard of it (Rajbhandari et al., 2020, stage 1) under data
// parallelism — with runs of equal (learning-rate scale, weight decay, counted in the norm). The
// alignment gap after a parameter belongs to that parameter's segment: its zeros stay zero under
// AdamW and add exactly nothing to the norm. The unsharded optimizer is the one-rank case of the
// sharded one (shard = the whole range).
//
// Frozen parameters, one rule everywhere: a frozen (non-trainable) parameter is a segment with
// lr_scale 0 (kernels/adamw.h): its values and its moments are left exactly as they are, and it is
// not counted in the gradient norm. The host loop below skips those segments; the CUDA kernel reads
// the same table and writes them back as read.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/graph.h"
#include "kernels/adamw.h"

namespace ferry {

struct AdamWConfig {
  float beta1 = 0.9f;
  float beta2 = 0.95f;
  float eps = 1e-8f;
  float weight_decay = 0.1f;
  float grad_clip = 1.0f;  // max global L2 norm; 0 disables clipping
};

using AdamWSegment = kernels::AdamWSegment;

// A range [begin, end) of a flat buffer, in elements.
struct ShardRange {
  size_t begin = 0;
  size_t end = 0;
  size_t size() const { return end - begin; }
};

// Shard `rank` of `ranks` over a buffer of n elements padded up to a multiple of ranks (ZeRO-1's
// cut; ranks 1 gives [0, n)).
ShardRange optimizer_shard(size_t n, int ranks, int rank);

// Elements of the flat storage that parameters [0, n_params) of g span (their end, gaps included
// between them, none after the last).
size_t params_storage_end(const Graph& g, int n_params);

struct AdamWTable {
  ShardRange range;                    // the shard: moments are kept for it (ZeRO-1 pads the last one)
  size_t end = 0;                      // where the parameters' storage ends inside it
  std::vector<AdamWSegment> segments;  // sorted by begin; segment i ends where i+1 begins, the last at end
  std::vector<uint8_t> counted;        // per segment: its gradients count in the global norm
  size_t segment_end(size_t i) const { return i + 1 < segments.size() ? segments[i + 1].begin : end; }
};

// The table of parameters [0, n_params) of g over `range` (clipped to their storage). owned[p]
// (empty: every parameter) says whether p counts in the global norm on this rank: a parameter
// replicated over tensor-parallel ranks or held by two pipeline stages is counted by one of them.
AdamWTable adamw_table(const Graph& g, int n_params, const std::vector<bool>& owned, ShardRange range,
                       const AdamWConfig& cfg);

// The clipping rule: the factor on every gradient for a global norm `norm`.
float clip_scale(double norm, float grad_clip);

class AdamW {
 public:
  // Over `table`'s range; moments start at zero.
  AdamW(AdamWTable table, AdamWConfig cfg);
  // The whole model in one process: every parameter of g, counted.
  AdamW(const Graph& g, AdamWConfig cfg);

  // Σ g² over the counted segments (each summed from zero in order, then added in segment order);
  // `grads` is the whole flat buffer (offsets are storage offsets).
  double norm_squared(const float* grads) const;
  // One update of the range at learning rate lr; grad_scale carries clipping.
  void update(float* params, const float* grads, float lr, float grad_scale);
  // One process: norm, clip, update; returns the norm before clipping.
  double step(float* params, const float* grads, float lr);

  // Bytes of optimizer state for a range of n elements, for the planner's fit check.
  static size_t state_bytes(size_t n) { return 2 * n * sizeof(float); }

  const AdamWTable& table() const { return table_; }
  const ShardRange& shard() const { return table_.range; }
  int steps_taken() const { return step_; }
  void set_steps_taken(int s) { step_ = s; }
  // Moments of the range: element i belongs to flat storage offset shard().begin + i.
  std::vector<float>& m() { return m_; }
  std::vector<float>& v() { return v_; }
  const std::vector<float>& m() const { return m_; }
  const std::vector<float>& v() const { return v_; }

 private:
  AdamWConfig cfg_;
  AdamWTable table_;
  std::vector<float> m_, v_;
  int step_ = 0;
};

}  // namespace ferry
