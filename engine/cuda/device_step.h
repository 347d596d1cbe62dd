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

// Device bytes of the optimizer state for a graph: fp32 master, m and v; with `reduce_buffer`, the
// fp32 DP reduce buffer of set_gradient_hooks too.
size_t device_optimizer_bytes(const Graph& g, bool reduce_buffer = false);

// The graph's parameters must be bf16 (the executor's flat buffers are the working copy).
// owned[p] (empty: every parameter) says whether parameter p counts in this rank's norm
// (see set_norm_reduction), as in adamw_table; given, it covers the model's parameters [0, n), and
// any after them (a pipeline stage's received activations) are neither updated nor counted.
std::unique_ptr<DeviceStep> make_device_step(const Graph& g, Executor& ex, const AdamWConfig& cfg,
                                             const std::vector<bool>& owned = {});

}  // namespace ferry::gpu
