// engine/cuda/device_step.h — the whole step on the CUDA backend, for one rank (parallel::Runner
// hands it the executor and the optimizer config; the segment table is engine/optim/adamw.h's).
//
// State on the device: the fp32 master weights, AdamW's m and v (flat, the graph's parameter order),
// the segment table (learning-rate scale and weight decay per run of parameters), and the values
// that change every step (learning rate, step number) in device memory. The first step runs eagerly
// (it sizes the kernel workspace and lets cuBLASLt pick its algorithms); from the second on, the
// whole step — zeroing the gradients, every micro-batch's forward and backward, the global gradient
// norm, clipping and AdamW, which also writes the bf16 working weights — is one captured CUDA graph,
// replayed with no host synchronization inside. Before each replay the host uploads the batch to
// fixed staging addresses (the graph copies it into the input values) and the learning rate and
// step; after it, the losses and the gradient norm come back in one asynchronous copy, read once
// the stream is done. Data parallelism on a device communicator is issued into the same step
// (set_gradient_hooks: gradient buckets reduced on the communicator's stream during the last
// backward); on a host communicator it stages through the host after backward (eager steps).
// ZeRO-1 (OptimizerShard below, engine/cuda/device_shard.h) keeps the master weights and moments
// of this rank's shard only, and reduce-scatters / all-gathers around the update.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "engine/executor.h"
#include "engine/optim/adamw.h"
#include "engine/train/step.h"
#include "engine/train/step_queues.h"

namespace ferry::gpu {

class DeviceStep {
 public:
  virtual ~DeviceStep() = default;
  virtual StepResult train(const std::vector<Batch>& micro_batches, float lr) = 0;
  virtual std::vector<float> parameters() const = 0;  // the fp32 master weights
  virtual void set_parameters(const std::vector<float>& flat) = 0;
  virtual OptimizerState optimizer_state() const = 0;
  virtual void set_optimizer_state(const OptimizerState& s) = 0;
  // The optimizer half alone, for a step whose forward and backward the caller ran on the executor
  // (pipeline stages: the runner's 1F1B schedule): the gradients are in the executor's buffer with
  // the data-parallel sum and the tied embedding's already added. The norm over the counted
  // segments (summed over the group by set_norm_reduction's `reduce`), the clip and AdamW run
  // eagerly; returns the global gradient norm (the host waits for it).
  virtual double update(float lr) = 0;
  // Off: every step runs eagerly (profiling per node, and the test that replay changes nothing).
  virtual void set_graph_replay(bool on) = 0;
  // Nodes (kernels, copies, memsets) of the captured step graph; 0 before a capture.
  virtual size_t graph_nodes() const = 0;
  // Data parallelism: `reduce` is called once per step, after the last micro-batch's backward and
  // before the norm, with the flat bf16 gradient buffer (device memory, n elements, the backend's
  // stream synchronized); it leaves the sum over the DP ranks there. A communicator whose buffers
  // are host memory (MPI) stages through the host, which a captured graph cannot replay: with a
  // reduction set the step runs eagerly.
  virtual void set_gradient_reduction(std::function<void(void* grads, size_t n)> reduce) = 0;
  // Data parallelism on a device communicator (NCCL): `hooks` issue the DP reduction into the step
  // (engine/train/step_queues.h: `begin` before the last micro-batch's backward, `after_node` after
  // each of its nodes, `finish` before the norm) on this step's queues: compute = the backend's
  // stream, comm = `comm_stream` (the communicator's cudaStream_t), events between them, bf16
  // gradients widened into an fp32 reduce buffer and narrowed back on comm. Nothing waits on the
  // host, so the step is still captured and replayed: the hooks run while the step is issued (the
  // first, eager step and the capture), the reduction runs on every replay.
  virtual void set_gradient_hooks(GradientHooks hooks, void* comm_stream) = 0;
  // The gradient norm sums Σg² over the counted segments of the table built with
  // make_device_step's `owned` (frozen parameters never count). Tensor parallelism: that is this
  // rank's share (its shards, and the replicated parameters it owns), summed over the model group
  // by `reduce`, which is handed the sum (one fp64 in device memory) and issues the sum in the
  // backend's stream order; then √ and the clip scale. A reduce through host memory cannot be
  // captured: the caller turns replay off.
  virtual void set_norm_reduction(std::function<void(double* sum_squares)> reduce) = 0;
};

// ZeRO-1 on the device (Rajbhandari et al., 2020, stage 1): the fp32 master weights, m and v are
// kept for this rank's shard of the parameters' storage (optimizer_shard's cut, the storage padded
// to range.size() · ranks). After the last backward the bf16 gradients are widened into an fp32
// buffer of the padded size and reduce-scattered into the shard; the norm sums the shard's counted
// ranges (engine/optim/device_table.h), then over the model group (set_norm_reduction) and over the
// DP group (all_reduce); AdamW updates the shard; the master shards are all-gathered and narrowed
// into the bf16 working copy. parameters() / optimizer_state() and their setters keep the whole
// model's order: the getters all-gather over the DP group (every rank calls them together).
//
// engine/ does not know communicators: the runner hands the DP group's collectives as plain calls
// on fp32 (f64 for all_reduce) buffers the step provides —
//   comm_stream set    (a device communicator) device memory; the call only enqueues on that
//                      stream, which the step forks onto and joins back from with events: no host
//                      wait, so the step is still captured and replayed
//   comm_stream null   (a host communicator, e.g. MPI with two ranks on one GPU) pinned host
//                      memory; the call returns when done; the step stages through the host and
//                      runs eagerly
struct OptimizerShard {
  ShardRange range;  // this rank's
  int ranks = 1;
  std::function<void(const float* whole, float* block, size_t block_count)> reduce_scatter;  // summed
  std::function<void(const float* block, float* whole, size_t block_count)> all_gather;
  std::function<void(double* data, size_t count)> all_reduce;  // summed, in place
  void* comm_stream = nullptr;
  explicit operator bool() const { return static_cast<bool>(reduce_scatter); }
};

// Device bytes of the optimizer state for a graph: fp32 master, m and v; with `reduce_buffer`, an
// fp32 buffer of the gradients' size for the DP sum too (set_gradient_hooks', or the runner's).
size_t device_optimizer_bytes(const Graph& g, bool reduce_buffer = false);
// Under ZeRO-1: master, m, v and the reduce-scattered gradients for the shard (4 · shard floats),
// and the fp32 buffer of the padded whole (ranks · shard floats) the collectives go through.
size_t device_sharded_optimizer_bytes(size_t shard, int ranks);

// The graph's parameters must be bf16 (the executor's flat buffers are the working copy).
// owned[p] (empty: every parameter) says whether parameter p counts in this rank's norm
// (see set_norm_reduction), as in adamw_table; given, it covers the model's parameters [0, n), and
// any after them (a pipeline stage's received activations) are neither updated nor counted. A set
// `shard`: ZeRO-1 (above); gradient hooks and a gradient reduction are then not used (the
// reduce-scatter is the DP sum).
std::unique_ptr<DeviceStep> make_device_step(const Graph& g, Executor& ex, const AdamWConfig& cfg,
                                             const std::vector<bool>& owned = {}, OptimizerShard shard = {});

}  // namespace ferry::gpu
