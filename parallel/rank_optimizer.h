// parallel/rank_optimizer.h — the optimizer half of the runner's step, one interface for every
// backend: what parallel::Runner calls after the last backward, and how it reads and writes the
// master weights and AdamW's moments for checkpoints.
//
// The runner has summed the gradients over DP (without ZeRO-1) and the tied embedding's between the
// first and last pipeline stage before update(); the rest — ZeRO-1's reduce-scatter, the norm
// summed per counted segment and over the model group (and DP under ZeRO-1), the clip, AdamW,
// ZeRO-1's all-gather — is the optimizer's. State crosses this interface in the rank's storage
// order (graph.h; the getters return at least the model parameters' span [0, n_local), the setters
// take graph.storage_size() elements, the gaps zero), whole on every rank (a ZeRO-1 shard's is
// gathered over DP: every rank calls the getters together); the runner maps it to and from the
// single-process order through the origins.
//
//   HostOptimizer     the CPU: engine/optim/adamw.h over this rank's shard, the collectives on
//                     host memory
//   DeviceOptimizer   CUDA: the device step's (engine/cuda/device_step.h) fp32 master weights,
//                     moments and update; its ZeRO-1 shard lives there too
#pragma once
#include <memory>
#include <vector>

#include "engine/executor.h"
#include "engine/optim/adamw.h"
#include "engine/train/step.h"
#include "parallel/communicator.h"

namespace ferry::gpu {
class DeviceStep;  // engine/cuda/device_step.h
}

namespace ferry::parallel {

class RankOptimizer {
 public:
  virtual ~RankOptimizer() = default;
  // One update from the gradients in the executor's buffer; returns the global gradient norm
  // (before clipping).
  virtual double update(float lr) = 0;
  // The master weights, storage order.
  virtual std::vector<float> parameters() const = 0;
  virtual void set_parameters(const std::vector<float>& storage) = 0;
  // Steps taken and the moments, storage order.
  virtual OptimizerState state() const = 0;
  virtual void set_state(const OptimizerState& storage) = 0;
};

// The CPU's: AdamW over `table` (its range: the ZeRO-1 shard, or [0, n_local) without ZeRO-1) on the
// executor's fp32 buffers; `dp` and `model` sum the norm (and carry ZeRO-1's collectives).
std::unique_ptr<RankOptimizer> make_host_optimizer(Executor& ex, AdamWTable table, const AdamWConfig& cfg,
                                                   size_t n_local, bool zero1, Communicator& dp,
                                                   Communicator& model);

// CUDA's: the device step's update and state (its norm reductions and ZeRO-1 shard set by the runner).
std::unique_ptr<RankOptimizer> make_device_optimizer(gpu::DeviceStep& step, const Graph& g);

}  // namespace ferry::parallel
