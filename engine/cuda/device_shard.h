// engine/cuda/device_shard.h — ZeRO-1's part of the CUDA device step (engine/cuda/device_step.h:
// OptimizerShard): this rank's shard of the fp32 master weights, of AdamW's m and v and of the
// summed gradients, the shard's segment table (engine/optim/device_table.h), and the DP group's
// collectives around the update — forked onto a device communicator's stream and joined back with
// events (engine/cuda/stream_queues.h; capturable), or staged through pinned host memory (eager). For the CUDA-aware files of
// engine/cuda/ only (it needs cuda_runtime.h; compile it under FERRY_WITH_CUDA).
//
// One step, issued in the backend's stream order:
//   reduce_scatter   the bf16 gradients [0, end) widened into the fp32 `whole` buffer (ranks · shard,
//                    the padding zero for ever), reduce-scattered into the shard's gradients
//   norm_squared     Σ g² over the shard's counted ranges (fp64, device)
//   all_reduce       that sum over the DP group (the model group's sum is the step's norm reduction)
//   update           AdamW over the shard's parameters (not its padding)
//   all_gather       the master shards gathered into `whole` and narrowed into the bf16 working copy
#pragma once
#include <memory>
#include <vector>

#include "engine/cuda/cuda_context.h"
#include "engine/cuda/device_step.h"
#include "engine/cuda/pinned_buffer.h"
#include "engine/train/step_queues.h"
#include "kernels/adamw.h"

namespace ferry::gpu {

class DeviceShard {
 public:
  // `table`: adamw_table over shard.range; `end`: where the parameters' storage ends.
  DeviceShard(CudaBackend& be, const AdamWTable& table, size_t end, const AdamWConfig& cfg, OptimizerShard shard);
  ~DeviceShard();
  DeviceShard(const DeviceShard&) = delete;
  DeviceShard& operator=(const DeviceShard&) = delete;

  // The collectives only enqueue on a device stream: the step can be captured.
  bool capturable() const { return shard_.comm_stream != nullptr; }

  void reduce_scatter(const bf16* grads);
  void norm_squared(double* sum_squares, void* workspace, size_t workspace_bytes);
  void all_reduce(double* sum_squares);
  void update(const kernels::cuda::AdamWStep* step_values, const float* clip_scale);
  void all_gather(bf16* params);

  // The host's view, in the storage order [0, end): every rank's shard gathered (collective over
  // the DP group), or this rank's slice taken from a whole storage array.
  enum class Part { master, m, v };
  std::vector<float> gather(Part part);
  void scatter(Part part, const float* storage);
  // The bf16 working copy from a whole storage array (set_parameters).
  void set_working_copy(bf16* params, const float* storage);

 private:
  DeviceBuffer& buffer(Part part);
  void fork();  // the comm stream waits for the work issued on the backend's stream so far
  void join();  // and the backend's stream for the comm stream's
  float* host_whole() const { return host_.as<float>(); }
  float* host_shard() const { return host_.as<float>() + whole_elems_; }
  double* host_sum() const {  // 8-byte aligned after the two float arrays
    return reinterpret_cast<double*>(host_.as<float>() + ((whole_elems_ + per_ + 1) & ~size_t{1}));
  }

  CudaBackend& be_;
  AdamWConfig cfg_;
  OptimizerShard shard_;
  size_t end_, per_, whole_elems_, n_;  // parameters' end, shard size, ranks · shard, covered elements
  int n_segments_ = 0, n_ranges_ = 0;
  DeviceBuffer master_, m_, v_, grads_, whole_, segments_, ranges_;
  PinnedBuffer host_;  // host communicator: whole, shard, one double
  cudaStream_t comm_ = nullptr;
  std::unique_ptr<StepQueues> queues_;  // device communicator: the stream queues (engine/cuda/stream_queues.h)
};

}  // namespace ferry::gpu
