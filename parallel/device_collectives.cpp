// parallel/device_collectives.cpp — see device_collectives.h.
#include "parallel/device_collectives.h"

#include "base/error.h"

#if FERRY_WITH_CUDA
#include <mutex>

#include "engine/cuda/cuda_context.h"
#include "engine/cuda/engine_kernels.h"
#include "engine/cuda/pinned_buffer.h"
#include "kernels/cuda_check.h"
#endif

namespace ferry::parallel {

#if FERRY_WITH_CUDA

namespace {

// The fork and join events (reused by every call: a wait orders against the record made before
// it, eager or captured) and the host staging buffer. Made on the first call, which the device
// step's eager first step makes before any capture; kept for the process.
struct Staging {
  std::mutex mutex;
  cudaEvent_t fork = nullptr, join = nullptr;
  gpu::PinnedBuffer host;
};

Staging& staging() {
  static Staging* s = [] {
    auto* made = new Staging;  // never freed: events and pinned memory outlive every backend
    FERRY_CUDA_CHECK(cudaEventCreateWithFlags(&made->fork, cudaEventDisableTiming));
    FERRY_CUDA_CHECK(cudaEventCreateWithFlags(&made->join, cudaEventDisableTiming));
    return made;
  }();
  return *s;
}

}  // namespace

void device_all_reduce(Backend& backend, Communicator& comm, void* data, size_t count, DType type, ReduceOp op) {
  FERRY_CHECK(type == DType::f32 || type == DType::f64, "device all-reduce of ", dtype_name(type));
  if (comm.size() == 1 || count == 0) return;
  gpu::CudaBackend& be = gpu::cuda_backend(backend);
  Staging& st = staging();
  std::lock_guard<std::mutex> lock(st.mutex);
  if (comm.buffers_on_device()) {
    auto* comm_stream = static_cast<cudaStream_t>(comm.device_stream());
    FERRY_CUDA_CHECK(cudaEventRecord(st.fork, be.stream()));
    FERRY_CUDA_CHECK(cudaStreamWaitEvent(comm_stream, st.fork, 0));
    comm.all_reduce(data, count, type, op);
    FERRY_CUDA_CHECK(cudaEventRecord(st.join, comm_stream));
    FERRY_CUDA_CHECK(cudaStreamWaitEvent(be.stream(), st.join, 0));
    return;
  }
  FERRY_CHECK(!be.capturing(), "an all-reduce through the ", comm.backend_name(),
              " communicator (host memory) inside a captured CUDA graph: such steps run eagerly");
  const size_t bytes = count * dtype_size(type);
  if (st.host.size() < bytes) {
    backend.synchronize();  // an upload from the old buffer may still be queued
    st.host.reserve(bytes);
  }
  backend.download(st.host.as<void>(), data, bytes);  // waits for the stream
  comm.all_reduce(st.host.as<void>(), count, type, op);
  // Queued from pinned memory: the next call's download (stream order) comes after it.
  backend.upload(data, st.host.as<void>(), bytes);
}

void device_all_reduce_bf16(Backend& backend, Communicator& comm, ferry::bf16* data, size_t count, float* scratch,
                            ReduceOp op) {
  if (comm.size() == 1 || count == 0) return;
  const cudaStream_t s = gpu::cuda_backend(backend).stream();
  gpu::convert_bf16_to_f32(scratch, data, count, s);
  device_all_reduce(backend, comm, scratch, count, DType::f32, op);
  gpu::convert_f32_to_bf16(data, scratch, count, s);
}

#else

void device_all_reduce(Backend& backend, Communicator&, void*, size_t, DType, ReduceOp) {
  FERRY_CHECK(false, "a device all-reduce on the ", backend.name(), " backend in a build without CUDA");
}

void device_all_reduce_bf16(Backend& backend, Communicator&, ferry::bf16*, size_t, float*, ReduceOp) {
  FERRY_CHECK(false, "a device all-reduce on the ", backend.name(), " backend in a build without CUDA");
}

#endif

}  // namespace ferry::parallel
