// engine/cuda/device_shard.cpp — see device_shard.h.
#include "base/error.h"

#if FERRY_WITH_CUDA
#include "engine/cuda/device_shard.h"

#include <algorithm>

#include "engine/cuda/engine_kernels.h"
#include "engine/cuda/stream_queues.h"
#include "engine/optim/device_table.h"
#include "kernels/adamw_norm_share.h"
#include "kernels/cuda_check.h"

namespace ferry::gpu {

namespace kc = kernels::cuda;

DeviceShard::DeviceShard(CudaBackend& be, const AdamWTable& table, size_t end, const AdamWConfig& cfg,
                         OptimizerShard shard)
    : be_(be), cfg_(cfg), shard_(std::move(shard)), end_(end), per_(shard_.range.size()) {
  FERRY_CHECK(shard_.reduce_scatter && shard_.all_gather && shard_.all_reduce, "a ZeRO-1 shard without its collectives");
  FERRY_CHECK(shard_.ranks >= 1 && per_ > 0 && per_ * static_cast<size_t>(shard_.ranks) >= end_,
              "shard of ", per_, " elements × ", shard_.ranks, " ranks for ", end_, " elements of parameters");
  FERRY_CHECK(table.range.begin == shard_.range.begin && table.range.end == shard_.range.end,
              "the segment table is not over this rank's shard");
  whole_elems_ = per_ * static_cast<size_t>(shard_.ranks);
  comm_ = static_cast<cudaStream_t>(shard_.comm_stream);
  const DeviceTable d = device_table(table);
  n_ = d.n;
  for (DeviceBuffer* b : {&master_, &m_, &v_, &grads_}) {
    *b = DeviceBuffer(be_, per_ * sizeof(float));
    be_.zero(b->data(), b->size());
  }
  whole_ = DeviceBuffer(be_, whole_elems_ * sizeof(float));
  be_.zero(whole_.data(), whole_.size());  // the padding past `end` stays zero: nothing writes it but zeros
  n_segments_ = static_cast<int>(d.segments.size());
  segments_ = DeviceBuffer(be_, d.segments.size() * sizeof(kc::AdamWSegment));
  be_.upload(segments_.data(), d.segments.data(), segments_.size());
  n_ranges_ = static_cast<int>(d.counted.size());
  ranges_ = DeviceBuffer(be_, std::max<size_t>(d.counted.size(), 1) * sizeof(kc::NormRange));
  if (!d.counted.empty()) be_.upload(ranges_.data(), d.counted.data(), d.counted.size() * sizeof(kc::NormRange));
  if (comm_) {
    queues_ = make_stream_queues(be_, comm_);
  } else {
    host_.reserve((((whole_elems_ + per_ + 1) & ~size_t{1}) * sizeof(float)) + sizeof(double));
  }
  be_.synchronize();
}

DeviceShard::~DeviceShard() = default;

// One pair of events serves every fork and join (engine/train/step_queues.h): a wait orders
// against the record made just before it, eagerly or in a capture.
void DeviceShard::fork() {
  queues_->record(Queue::compute, kCollectiveFork);
  queues_->wait(Queue::comm, kCollectiveFork);
}

void DeviceShard::join() {
  queues_->record(Queue::comm, kCollectiveJoin);
  queues_->wait(Queue::compute, kCollectiveJoin);
}

DeviceBuffer& DeviceShard::buffer(Part part) {
  return part == Part::master ? master_ : part == Part::m ? m_ : v_;
}

// The host path's copies: a download waits for the stream, so the host never writes the pinned
// buffer while an upload from it is still queued (every write below follows a download).
void DeviceShard::reduce_scatter(const bf16* grads) {
  float* whole = static_cast<float*>(whole_.data());
  float* mine = static_cast<float*>(grads_.data());
  if (comm_) {
    fork();
    convert_bf16_to_f32(whole, grads, end_, comm_);
    shard_.reduce_scatter(whole, mine, per_);
    join();
    return;
  }
  FERRY_CHECK(!be_.capturing(), "a ZeRO-1 step through a host communicator inside a captured CUDA graph");
  convert_bf16_to_f32(whole, grads, end_, be_.stream());
  be_.download(host_whole(), whole, whole_elems_ * sizeof(float));
  shard_.reduce_scatter(host_whole(), host_shard(), per_);
  be_.upload(mine, host_shard(), per_ * sizeof(float));
}

void DeviceShard::norm_squared(double* sum_squares, void* workspace, size_t workspace_bytes) {
  kc::grad_norm_squared<float>(sum_squares, static_cast<const float*>(grads_.data()),
                               static_cast<const kc::NormRange*>(ranges_.data()), n_ranges_, workspace,
                               workspace_bytes, be_.stream());
}

void DeviceShard::all_reduce(double* sum_squares) {
  if (comm_) {
    fork();
    shard_.all_reduce(sum_squares, 1);
    join();
    return;
  }
  be_.download(host_sum(), sum_squares, sizeof(double));
  shard_.all_reduce(host_sum(), 1);
  be_.upload(sum_squares, host_sum(), sizeof(double));
}

void DeviceShard::update(const kc::AdamWStep* step_values, const float* clip_scale) {
  kc::adamw_update<float>(static_cast<float*>(master_.data()), nullptr, static_cast<float*>(m_.data()),
                          static_cast<float*>(v_.data()), static_cast<const float*>(grads_.data()), n_,
                          static_cast<const kc::AdamWSegment*>(segments_.data()), n_segments_, step_values,
                          cfg_.beta1, cfg_.beta2, cfg_.eps, clip_scale, be_.stream());
}

void DeviceShard::all_gather(bf16* params) {
  float* whole = static_cast<float*>(whole_.data());
  if (comm_) {
    fork();
    shard_.all_gather(static_cast<const float*>(master_.data()), whole, per_);
    join();
  } else {
    be_.download(host_shard(), master_.data(), per_ * sizeof(float));
    shard_.all_gather(host_shard(), host_whole(), per_);
    be_.upload(whole, host_whole(), end_ * sizeof(float));
  }
  convert_f32_to_bf16(params, whole, end_, be_.stream());
}

std::vector<float> DeviceShard::gather(Part part) {
  std::vector<float> out(whole_elems_);
  const DeviceBuffer& mine = buffer(part);
  if (comm_) {
    // Through `whole`, which the step rewrites before it reads it again.
    fork();
    shard_.all_gather(static_cast<const float*>(mine.data()), static_cast<float*>(whole_.data()), per_);
    join();
    be_.download(out.data(), whole_.data(), whole_elems_ * sizeof(float));
  } else {
    std::vector<float> local(per_);
    be_.download(local.data(), mine.data(), per_ * sizeof(float));
    shard_.all_gather(local.data(), out.data(), per_);
  }
  out.resize(end_);
  return out;
}

void DeviceShard::scatter(Part part, const float* storage) {
  std::vector<float> local(per_, 0.0f);
  const size_t begin = std::min(shard_.range.begin, end_), stop = std::min(shard_.range.end, end_);
  std::copy(storage + begin, storage + stop, local.begin());
  be_.upload(buffer(part).data(), local.data(), per_ * sizeof(float));
  be_.synchronize();
}

void DeviceShard::set_working_copy(bf16* params, const float* storage) {
  be_.upload(whole_.data(), storage, end_ * sizeof(float));
  convert_f32_to_bf16(params, static_cast<const float*>(whole_.data()), end_, be_.stream());
  be_.synchronize();
}

}  // namespace ferry::gpu

#endif
