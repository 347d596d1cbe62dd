// parallel/device_collectives.cpp — see device_collectives.h.
#include "parallel/device_collectives.h"

#include "base/error.h"
#include "engine/cuda/stream_queues.h"
#include "parallel/collective_groups.h"

#if FERRY_WITH_CUDA
#include <mutex>

#include "engine/cuda/cuda_context.h"
#include "engine/cuda/engine_kernels.h"
#include "engine/cuda/pinned_buffer.h"
#endif

namespace ferry::parallel {

namespace {

#if FERRY_WITH_CUDA

// A host communicator's all-reduce of device memory, through pinned host memory. The staging buffer
// is the process's (one host round trip at a time, under the mutex), grown when a call needs more
// and never freed: pinned memory outlives every backend.
void staged_all_reduce(Backend& backend, Communicator& comm, void* data, size_t count, DType type, ReduceOp op) {
  FERRY_CHECK(!gpu::cuda_backend(backend).capturing(), "an all-reduce through the ", comm.backend_name(),
              " communicator (host memory) inside a captured CUDA graph: such steps run eagerly");
  static std::mutex mutex;
  static auto* host = new gpu::PinnedBuffer;
  std::lock_guard<std::mutex> lock(mutex);
  const size_t bytes = count * dtype_size(type);
  if (host->size() < bytes) {
    backend.synchronize();  // an upload from the old buffer may still be queued
    host->reserve(bytes);
  }
  backend.download(host->as<void>(), data, bytes);  // waits for the stream
  comm.all_reduce(host->as<void>(), count, type, op);
  // Queued from pinned memory: the next call's download (stream order) comes after it.
  backend.upload(data, host->as<void>(), bytes);
}

#else

void staged_all_reduce(Backend& backend, Communicator&, void*, size_t, DType, ReduceOp) {
  FERRY_CHECK(false, "a device all-reduce on the ", backend.name(), " backend in a build without CUDA");
}

#endif

}  // namespace

void issue_all_reduce(Backend& backend, StepQueues& queues, Communicator& comm, void* data, size_t count, DType type,
                      ReduceOp op) {
  if (comm.size() == 1 || count == 0) return;
  if (comm.buffers_on_device()) {
    queues.record(Queue::compute, kCollectiveFork);  // after the work that wrote `data`
    queues.wait(Queue::comm, kCollectiveFork);
    comm.all_reduce(data, count, type, op);  // enqueued on the communicator's stream
    queues.record(Queue::comm, kCollectiveJoin);
    queues.wait(Queue::compute, kCollectiveJoin);  // what reads `data` next runs after the sum
    return;
  }
  if (backend.device() == Device::CPU) return comm.all_reduce(data, count, type, op);
  staged_all_reduce(backend, comm, data, count, type, op);
}

std::unique_ptr<StepQueues> make_collective_queues(Backend& backend, Communicator& comm) {
  if (backend.device() == Device::CUDA && comm.buffers_on_device())
    return gpu::make_stream_queues(backend, comm.device_stream());
  return std::make_unique<ImmediateQueues>();
}

GroupCollectives group_collectives(Backend& backend, int id) {
  return {backend, collective_queues(id), collective_group(id)};
}

#if FERRY_WITH_CUDA

void issue_all_reduce_bf16(Backend& backend, StepQueues& queues, Communicator& comm, ferry::bf16* data, size_t count,
                           float* scratch, ReduceOp op) {
  if (comm.size() == 1 || count == 0) return;
  const cudaStream_t s = gpu::cuda_backend(backend).stream();
  gpu::convert_bf16_to_f32(scratch, data, count, s);
  issue_all_reduce(backend, queues, comm, scratch, count, DType::f32, op);
  gpu::convert_f32_to_bf16(data, scratch, count, s);
}

#else

void issue_all_reduce_bf16(Backend& backend, StepQueues&, Communicator&, ferry::bf16*, size_t, float*, ReduceOp) {
  FERRY_CHECK(false, "a bf16 all-reduce on the ", backend.name(), " backend in a build without CUDA");
}

#endif

}  // namespace ferry::parallel
