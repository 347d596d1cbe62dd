// engine/train/step.h — one optimizer step of any model, behind one interface, so that every loop
// (pretraining, fine-tuning) is written once and every way of running a step (one process; data,
// tensor or pipeline parallel ranks) plugs in under it.
//
// A Batch is the host data for a graph's integer inputs (tokens, targets, key lengths, labels),
// keyed by value id. train() takes the micro-batches of one step: gradient accumulation in one
// process, the pipeline's micro-batches under pipeline parallelism.
#pragma once
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "engine/backend.h"
#include "engine/executor.h"
#include "engine/graph.h"
#include "engine/optim/adamw.h"

namespace ferry {

namespace gpu {
class DeviceStep;  // engine/cuda/device_step.h
}

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

// The whole step in this process, on one backend. On the CPU, AdamW runs on the host buffers; on
// the CUDA backend the optimizer state lives on the device and, after one eager step, the whole step
// replays as one CUDA graph (engine/cuda/device_step.h; the graph must be bf16 there: a forward-only
// fp32 graph is retyped to bf16 before autodiff, engine/graph_dtype.h).
class LocalStep final : public StepRunner {
 public:
  // loss: the graph's scalar loss output. memory_limit 0: the backend's capacity.
  LocalStep(Graph graph, Backend& backend, AdamWConfig adamw, size_t memory_limit = 0);
  ~LocalStep() override;

  StepResult train(const std::vector<Batch>& micro_batches, float lr) override;
  double evaluate(const Batch& batch) override;
  std::vector<float> parameters() const override;
  void set_parameters(const std::vector<float>& flat) override;
  OptimizerState optimizer_state() const override;
  void set_optimizer_state(const OptimizerState& s) override;
  size_t arena_bytes() const override { return executor_->plan().arena_bytes; }
  size_t unshared_bytes() const override { return executor_->plan().unshared_bytes; }

  const Graph& graph() const { return graph_; }
  Executor& executor() { return *executor_; }
  // The host optimizer (CPU backend only).
  AdamW& optimizer();

  // CUDA backend: replay the captured step (default) or run every step eagerly; nodes of the
  // captured step graph (0 on the CPU or before a capture).
  void set_graph_replay(bool on);
  size_t graph_nodes() const;

 private:
  void load(const Batch& b);
  Graph graph_;
  Backend& backend_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<AdamW> optimizer_;        // CPU backend
  std::unique_ptr<gpu::DeviceStep> device_;  // CUDA backend
};

}  // namespace ferry
