// engine/train/step.h — one optimizer step of any model, behind one interface, so that every loop
// (pretraining, fine-tuning) is written once and every way of running a step (one process; data,
// tensor or pipeline parallel ranks) plugs in under it.
//
// A Batch is the host data for a graph's integer inputs (tokens, targets, key lengths, labels),
// keyed by value id. train() takes the micro-batches of one step: gradient accumulation in one
// process, the pipeline's micro-batches under pipeline parallelism.
//
// The one implementation is parallel::Runner (parallel/runner.h), composed by parallel/step_factory.h:
// the engine's loops are written against this interface and never build a runner themselves.
#pragma once
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "engine/backend.h"
#include "engine/graph.h"

namespace ferry {

struct Batch {
  std::vector<std::pair<int, std::vector<int32_t>>> inputs;
};

// AdamW's state over the full (unsharded) flat parameter order: what a checkpoint stores, whatever
// the layout that produced it.
struct OptimizerState {
  int steps = 0;
  std::vector<float> m, v;
};

struct StepResult {
  double loss = 0;       // mean over the micro-batches
  double grad_norm = 0;  // global norm before clipping
};

class StepRunner {
 public:
  virtual ~StepRunner() = default;
  // Zero gradients, forward+backward every micro-batch (the loss node carries 1/micro-batches),
  // clip, update at learning rate lr.
  virtual StepResult train(const std::vector<Batch>& micro_batches, float lr) = 0;
  // Mean loss of one batch, forward only.
  virtual double evaluate(const Batch& batch) = 0;
  // All parameters as one host array in the graph's flat order (f32), and back.
  virtual std::vector<float> parameters() const = 0;
  virtual void set_parameters(const std::vector<float>& flat) = 0;
  virtual OptimizerState optimizer_state() const = 0;
  virtual void set_optimizer_state(const OptimizerState& s) = 0;
  virtual size_t arena_bytes() const = 0;
  virtual size_t unshared_bytes() const = 0;

  // Which slice of every global batch this process feeds (data-parallel rank and size): a loop
  // gives train() the micro-batches of its slice only.
  struct DataShard {
    int rank = 0;
    int size = 1;
  };
  virtual DataShard data_shard() const { return {}; }
  // Whether this process prints progress and writes metrics and checkpoints (one rank of a job).
  virtual bool writes_output() const { return true; }
};

// This data-parallel rank's rows of a global batch: every input's leading dimension (rows) is cut
// into `shard.size` equal parts and part `shard.rank` kept (a loop that draws global batches feeds a
// runner its slice with this).
inline Batch shard_rows(const Batch& global, StepRunner::DataShard shard) {
  if (shard.size == 1) return global;
  Batch b;
  for (const auto& [value, data] : global.inputs) {
    const size_t part = data.size() / static_cast<size_t>(shard.size);
    const auto first = data.begin() + static_cast<std::ptrdiff_t>(part * static_cast<size_t>(shard.rank));
    b.inputs.emplace_back(value, std::vector<int32_t>(first, first + static_cast<std::ptrdiff_t>(part)));
  }
  return b;
}

// A GPT step as the pretraining loop sees it: the runner and the single-process graph's input ids
// and parameter table (parallel::make_gpt_step builds it).
struct GptStep {
  std::unique_ptr<StepRunner> runner;
  // Value ids of the integer inputs in the single-process GPT graph; batches are keyed by these
  // whatever the layout (the runner maps them onto its shards and stages).
  int tokens = -1;
  int targets = -1;
  int64_t n_params = 0;
  // The full (unsharded) parameter layout, for initialization and checkpoints.
  std::vector<ParamInfo> params;
};

}  // namespace ferry
