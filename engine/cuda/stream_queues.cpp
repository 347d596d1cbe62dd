// engine/cuda/stream_queues.cpp — see stream_queues.h.
#include "engine/cuda/stream_queues.h"

#include "base/error.h"

#if FERRY_WITH_CUDA
#include <map>

#include "engine/cuda/cuda_context.h"
#include "kernels/cuda_check.h"
#endif

namespace ferry::gpu {

#if FERRY_WITH_CUDA

namespace {

class StreamQueues final : public StepQueues {
 public:
  StreamQueues(cudaStream_t compute, cudaStream_t comm) : compute_(compute), comm_(comm) {}
  ~StreamQueues() override {
    for (auto& [number, e] : events_) cudaEventDestroy(e);
  }
  StreamQueues(const StreamQueues&) = delete;
  StreamQueues& operator=(const StreamQueues&) = delete;

  void record(Queue q, int e) override { FERRY_CUDA_CHECK(cudaEventRecord(event(e), stream(q))); }
  void wait(Queue q, int e) override { FERRY_CUDA_CHECK(cudaStreamWaitEvent(stream(q), event(e), 0)); }

 private:
  cudaStream_t stream(Queue q) const { return q == Queue::compute ? compute_ : comm_; }
  // Numbers are sparse (the DP buckets count up from 0, single collectives count down from -1).
  cudaEvent_t event(int e) {
    auto it = events_.find(e);
    if (it != events_.end()) return it->second;
    cudaEvent_t made = nullptr;
    FERRY_CUDA_CHECK(cudaEventCreateWithFlags(&made, cudaEventDisableTiming));
    events_.emplace(e, made);
    return made;
  }

  cudaStream_t compute_, comm_;
  std::map<int, cudaEvent_t> events_;
};

}  // namespace

std::unique_ptr<StepQueues> make_stream_queues(Backend& backend, void* comm_stream) {
  FERRY_CHECK(comm_stream != nullptr, "stream queues need the communicator's stream");
  return std::make_unique<StreamQueues>(cuda_backend(backend).stream(), static_cast<cudaStream_t>(comm_stream));
}

#else

std::unique_ptr<StepQueues> make_stream_queues(Backend& backend, void*) {
  FERRY_CHECK(false, "stream queues on the ", backend.name(), " backend in a build without CUDA");
  return nullptr;
}

#endif

}  // namespace ferry::gpu
