// parallel/runner.h — the one step runner: a built graph, a backend, the optimizer and the rank
// grid's communicators, behind the StepRunner interface (engine/train/step.h), so that every loop
// (pretraining, fine-tuning) runs every layout. One process is its one-rank case.
//
// The runner is handed a RankGraph: this rank's forward graph, already rewritten by the step
// factory (parallel/step_factory.h: TP shards, the PP stage, label counts), and where its
// parameters sit in the single-process flat order. It derives backward once and runs:
//   pp = 1   every micro-batch forward + backward (gradient accumulation)
//   pp > 1   the micro-batches on a 1F1B schedule (Narayanan et al., 2021), one activation arena
//            per micro-batch in flight, activations and gradients sent point to point
// then sums gradients over DP (buckets during the last backward; ZeRO-1's reduce-scatter is the
// optimizer's) and the tied embedding's between the first and last stages, and hands the step to
// its optimizer (parallel/rank_optimizer.h, one interface for both backends: the norm, the clip,
// AdamW over its shard — engine/optim/adamw.h's one segment table; without ZeRO-1 the shard is
// the whole buffer), which also holds the state parameters() and optimizer_state() read.
// Loss normalisation equals one process with the global batch: a graph whose every row is a
// target (GPT pretraining) carries 1/(dp · micro-batches) in its loss node; a graph with label
// counts (RankGraph::label_counts) is fed, per micro-batch, the number of labelled rows of the
// global micro-batch (summed over DP), so each rank's loss is its share of the global mean.
// parameters() and optimizer_state() are the full single-process flat order on every rank.
//
// On CUDA without PP the device step (engine/cuda/device_step.h) runs the step as one captured
// CUDA graph (the same sequence, issued without host waits; the one place the runner forks on the
// backend). DP on a device
// communicator (NCCL) issues the bucket schedule (parallel/data_parallel.h) into the captured step;
// on a host one (MPI, two ranks may share a GPU) it sums through host memory (eager steps). ZeRO-1:
// the device step's shard (reduce-scatter, AdamW, all-gather: captured on NCCL, staged and eager
// on MPI). TP: the TP ops' CUDA kernels, collectives in stream order (parallel/
// device_collectives.h), the norm summed on the device. PP on CUDA runs this runner's own 1F1B
// schedule on the executor, eagerly: the activations and their gradients travel as fp32 messages
// (widened from bf16 on the device), device to device on NCCL, through host memory on MPI; after
// the last backward the DP sum and the tied embedding's run on the device buffers and the device
// optimizer (the device step's update()) does the rest.
#pragma once
#include <deque>
#include <map>
#include <memory>
#include <vector>

#include "engine/executor.h"
#include "engine/optim/adamw.h"
#include "engine/train/step.h"
#include "parallel/collective_groups.h"
#include "parallel/data_parallel.h"
#include "parallel/param_layout.h"
#include "parallel/rank_grid.h"
#include "parallel/rank_optimizer.h"

namespace ferry::gpu {
class DeviceStep;    // engine/cuda/device_step.h
}

namespace ferry::parallel {

struct ParallelLayout {
  int tp = 1;
  int pp = 1;
  bool zero1 = false;
  size_t bucket_elems = (size_t{25} << 20) / sizeof(float);  // 25 MiB of fp32 gradients per DP bucket (DDP's)
};

// A cross_entropy node's label count: value `count` (i32 [1], a graph input) is set before each
// forward to the number of rows of `targets` (a single-process input id) that are not `ignore`,
// summed over the DP group.
struct LabelCount {
  int count = -1;
  int targets = -1;
  int ignore = -1;
};

// This rank's share of the model, as the step factory built it.
struct RankGraph {
  Graph graph;                        // forward only
  std::vector<ParamOrigin> origins;   // per model parameter of graph
  int n_model_params = 0;             // params [0, n) are the model's; the rest hold received activations
  int64_t n_full = 0;                 // parameters of the single-process graph (logical order)
  std::map<int, int> input_map;       // single-process input value → value of graph
  std::vector<int> recv, send, send_grad;  // pipeline (parallel/pipeline.h)
  std::vector<int> tied_params;       // model params whose gradient is summed between first and last stage
  std::vector<LabelCount> label_counts;
  // Each DP rank's loss is its share of the global mean (label counts on the stage that holds the
  // loss): the DP sum of the losses is the mean, not dp times it. Set on every stage alike.
  bool loss_is_share = false;
};

// The communicators a runner uses, made once from the rank grid (the TP group is registered for
// the collective nodes of a rewritten graph).
struct RunnerComms {
  RunnerComms(Communicator& world, RankGrid grid);
  // One process: a world of one, owned here.
  RunnerComms();
  std::unique_ptr<Communicator> own_world;
  Communicator& world;
  RankGrid grid;
  GridCoord coord;
  GridCommunicators comms;
  std::unique_ptr<GroupRegistration> tp_group;
  std::unique_ptr<Communicator> tie;  // first and last pipeline stage, when they share parameters
};

struct RunnerOptions {
  AdamWConfig adamw;
  ParallelLayout layout;
  int micro_batches = 0;  // the count the loss scale was built for; 0: any
  size_t memory_limit = 0;
};

class Runner final : public StepRunner {
 public:
  Runner(RankGraph g, std::unique_ptr<RunnerComms> comms, Backend& backend, RunnerOptions opt);
  ~Runner() override;

  StepResult train(const std::vector<Batch>& micro_batches, float lr) override;
  double evaluate(const Batch& batch) override;
  std::vector<float> parameters() const override;
  void set_parameters(const std::vector<float>& flat) override;
  OptimizerState optimizer_state() const override;
  void set_optimizer_state(const OptimizerState& s) override;
  size_t arena_bytes() const override { return executor_->plan().arena_bytes; }
  size_t unshared_bytes() const override { return executor_->plan().unshared_bytes; }
  DataShard data_shard() const override { return {c_->coord.dp, c_->grid.shape().dp}; }
  bool writes_output() const override { return c_->world.rank() == 0; }

  const RankGrid& grid() const { return c_->grid; }
  const Graph& graph() const { return graph_; }
  Executor& executor() { return *executor_; }
  // How many DP buckets the last step reduced while backward was still running.
  int buckets_reduced_during_backward() const { return buckets_ ? buckets_->reduced_during_backward() : 0; }
  // CUDA backend: replay the captured step (default) or run every step eagerly; nodes of the
  // captured step graph (0 on the CPU or before a capture).
  void set_graph_replay(bool on);
  size_t graph_nodes() const;

 private:
  // A pipeline message: the values it carries packed in order as fp32, in host memory for a host
  // communicator, in device memory for a device one (NCCL sends it device to device).
  struct Message {
    std::vector<float> host;
    DeviceBuffer device;
    size_t count = 0;
    void* data() { return device.data() ? device.data() : static_cast<void*>(host.data()); }
  };
  struct InFlight {
    DeviceBuffer arena;
    Message received;
  };
  void load(const Batch& b);
  void all_reduce_scalar(Communicator& comm, double& x);
  float* grads_ptr() const { return executor_->grads().as<float>(); }
  // Pipeline pieces.
  Message message(size_t count);
  std::vector<Tensor> tensors(const std::vector<int>& values) const;
  std::vector<Tensor> received_grad_tensors() const;
  void pack(Message& m, const std::vector<Tensor>& from);
  void unpack(Message& m, const std::vector<Tensor>& to);
  void send(Message& m, int peer);
  void recv(Message& m, int peer);
  void send_recv(Message& out, int dest, Message& in, int source);
  Message forward_micro(const Batch& b, Message received, double& loss_sum);
  Message backward_micro(Message& dgrad, bool last);
  double run_1f1b(const std::vector<Batch>& micro);
  void reduce_and_update(float lr, StepResult& r);
  void sum_gradients(Communicator& comm, size_t begin, size_t count);
  // Full ⇄ local flat copies over the owned runs.
  void gather_full(const std::vector<float>& local, std::vector<float>& full) const;
  void log_rank(const StepResult& r) const;

  std::unique_ptr<RunnerComms> c_;
  Backend& backend_;
  RunnerOptions opt_;
  int64_t n_full_ = 0;
  std::map<int, int> input_map_;
  std::vector<LabelCount> label_counts_;
  bool loss_is_share_ = false;

  Graph graph_;
  std::vector<ParamOrigin> origins_;
  int n_model_params_ = 0;
  size_t n_local_ = 0;            // elements of the model parameters' storage
  std::vector<int> tied_params_;
  std::vector<int> recv_, send_, send_grad_;
  size_t recv_elems_ = 0, send_elems_ = 0;  // pipeline messages' sizes
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<gpu::DeviceStep> device_;     // CUDA backend: the captured step, the device optimizer
  std::unique_ptr<RankOptimizer> optimizer_;     // the update and its state, either backend
  std::unique_ptr<GradientBuckets> buckets_;  // DP without ZeRO-1 (CPU), any device communicator (CUDA)
  std::unique_ptr<HostQueues> host_queues_;   // the CPU's
  DeviceBuffer scalar_;                       // all_reduce_scalar on a device communicator
  DeviceBuffer link_scratch_;                 // CUDA: a host message's fp32 values on the device
  DeviceBuffer reduce_scratch_;               // CUDA: fp32 sums of bf16 gradients (sum_gradients)
  std::deque<InFlight> in_flight_;
  std::vector<DeviceBuffer> spare_arenas_;
  int steps_ = 0;
};

}  // namespace ferry::parallel
