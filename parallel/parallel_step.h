// parallel/parallel_step.h — one training step of a GPT on a tp × dp × pp grid of ranks, behind
// the StepRunner interface (engine/train/step.h), so that the training loop runs any layout.
//
// Each rank builds the single-process graph at its micro-batch shape, rewrites it for its TP rank
// (tensor_parallel.h), cuts out its pipeline stage (pipeline.h), derives backward, and runs:
//   pp = 1   every micro-batch forward + backward (gradient accumulation)
//   pp > 1   the micro-batches on a 1F1B schedule (Narayanan et al., 2021), one activation arena
//            per micro-batch in flight, activations and gradients sent point to point
// then sums gradients over DP (buckets during the last backward, or a reduce-scatter with
// ZeRO-1), all-reduces the tied embedding's gradient between the first and last stages, clips by
// the global norm and updates with AdamW (zero1.h).
// The loss node carries 1/(dp · micro-batches): DP equals one process with the global batch dp·B.
// parameters() and optimizer_state() are the full single-process flat order on every rank.
#pragma once
#include <deque>
#include <memory>
#include <vector>

#include "engine/model/gpt.h"
#include "engine/train/step.h"
#include "parallel/collective_groups.h"
#include "parallel/data_parallel.h"
#include "parallel/param_layout.h"
#include "parallel/rank_grid.h"
#include "parallel/zero1.h"

namespace ferry::parallel {

struct ParallelLayout {
  int tp = 1;
  int pp = 1;
  bool zero1 = false;
  size_t bucket_elems = size_t{1} << 22;  // 16 MiB of f32 gradients per DP bucket
};

class ParallelGptStep final : public StepRunner {
 public:
  // batch: micro-batch rows per DP rank; micro_batches: per step (grad_accum). The grid is
  // tp × world/(tp·pp) × pp over `world`, which must outlive this object.
  ParallelGptStep(const GptConfig& model, int batch, int seq_len, int micro_batches, AdamWConfig adamw,
                  ParallelLayout layout, Communicator& world, Backend& backend, size_t memory_limit = 0);
  ~ParallelGptStep() override;

  StepResult train(const std::vector<Batch>& micro_batches, float lr) override;
  double evaluate(const Batch& batch) override;
  std::vector<float> parameters() const override;
  void set_parameters(const std::vector<float>& flat) override;
  OptimizerState optimizer_state() const override;
  void set_optimizer_state(const OptimizerState& s) override;
  size_t arena_bytes() const override { return executor_->plan().arena_bytes; }
  size_t unshared_bytes() const override { return executor_->plan().unshared_bytes; }
  DataShard data_shard() const override { return {coord_.dp, grid_.shape().dp}; }
  bool writes_output() const override { return world_.rank() == 0; }

  // Value ids, in the single-process graph, of the inputs a Batch carries.
  int tokens() const { return full_tokens_; }
  int targets() const { return full_targets_; }
  const RankGrid& grid() const { return grid_; }
  const Graph& graph() const { return graph_; }
  // How many DP buckets the last step reduced while backward was still running.
  int buckets_reduced_during_backward() const { return buckets_ ? buckets_->reduced_during_backward() : 0; }

 private:
  struct InFlight {
    DeviceBuffer arena;
    std::vector<float> received;
  };
  void load(const Batch& b);
  float* params_ptr() const { return executor_->params().as<float>(); }
  float* grads_ptr() const { return executor_->grads().as<float>(); }
  // Pipeline pieces.
  void write_received(const std::vector<float>& data);
  std::vector<float> pack(const std::vector<int>& values) const;
  std::vector<float> received_grads() const;
  std::vector<float> forward_micro(const Batch& b, const std::vector<float>& received, double& loss_sum);
  std::vector<float> backward_micro(const std::vector<float>& dgrad, bool last);
  double run_1f1b(const std::vector<Batch>& micro);
  void reduce_and_update(float lr, StepResult& r);
  // Full ⇄ local flat copies over the owned runs.
  void gather_full(const std::vector<float>& local, std::vector<float>& full) const;
  void log_rank(const StepResult& r) const;

  Communicator& world_;
  RankGrid grid_;
  GridCoord coord_;
  GridCommunicators comms_;
  std::unique_ptr<Communicator> tie_;  // first and last pipeline stage, when they share parameters
  std::unique_ptr<GroupRegistration> tp_group_;
  Backend& backend_;
  ParallelLayout layout_;
  int micro_batches_;
  float clip_;
  int64_t n_full_ = 0;
  int full_tokens_ = -1, full_targets_ = -1;
  std::map<int, int> input_map_;  // full input value → stage input value

  Graph graph_;
  std::vector<ParamOrigin> origins_;  // per model parameter of graph_
  int n_model_params_ = 0;
  size_t n_local_ = 0;                // elements of the model parameters
  std::vector<int> tied_params_;      // model params whose gradient is summed over tie_
  std::vector<int> recv_, send_, send_grad_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<ShardedAdamW> optimizer_;
  std::unique_ptr<GradientBuckets> buckets_;
  std::deque<InFlight> in_flight_;
  std::vector<DeviceBuffer> spare_arenas_;
  int steps_ = 0;
};

}  // namespace ferry::parallel
