// parallel/communicator_nccl.cpp
#include "parallel/communicator_nccl.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstring>
#include <mutex>
#include <vector>

#include "base/error.h"
#include "parallel/failure.h"
#include "parallel/watchdog.h"

namespace ferry::parallel {
namespace {

// A failed NCCL or CUDA call leaves this rank unable to take part in collectives; the others would
// wait for it, so the whole job goes down with the call named.
#define FERRY_NCCL(call)                                                                              \
  do {                                                                                                \
    const ncclResult_t r_ = (call);                                                                   \
    if (r_ != ncclSuccess) abort_world(str_cat(#call, ": ", ncclGetErrorString(r_), " ", ncclGetLastError(nullptr))); \
  } while (0)
#define FERRY_CUDA(call)                                                                     \
  do {                                                                                       \
    const cudaError_t e_ = (call);                                                           \
    if (e_ != cudaSuccess) abort_world(str_cat(#call, ": ", cudaGetErrorString(e_)));       \
  } while (0)

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::f32: return ncclFloat32;
    case DType::f64: return ncclFloat64;
    case DType::i32: return ncclInt32;
  }
  FERRY_CHECK(false, "unknown DType");
}

ncclRedOp_t nccl_op(ReduceOp op) { return op == ReduceOp::sum ? ncclSum : ncclMax; }

// Events marking the end of each enqueued operation, recycled once the watchdog sees them done.
class EventPool {
 public:
  ~EventPool() {
    for (cudaEvent_t e : all_) cudaEventDestroy(e);
  }
  cudaEvent_t acquire() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (free_.empty()) {
      cudaEvent_t e;
      FERRY_CUDA(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
      all_.push_back(e);
      return e;
    }
    cudaEvent_t e = free_.back();
    free_.pop_back();
    return e;
  }
  void release(cudaEvent_t e) {
    std::lock_guard<std::mutex> lock(mutex_);
    free_.push_back(e);
  }

 private:
  std::mutex mutex_;
  std::vector<cudaEvent_t> all_;
  std::vector<cudaEvent_t> free_;
};

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(ncclComm_t comm, int device, cudaStream_t stream, bool owns_stream,
                   std::chrono::milliseconds timeout)
      : comm_(comm), device_(device), stream_(stream), owns_stream_(owns_stream), timeout_(timeout) {
    FERRY_NCCL(ncclCommUserRank(comm_, &rank_));
    FERRY_NCCL(ncclCommCount(comm_, &size_));
    FERRY_CUDA(cudaMalloc(&barrier_flag_, sizeof(int32_t)));
    CollectiveWatchdog::Options w;
    w.timeout = timeout;
    w.health = [this]() -> std::optional<std::string> {
      ncclResult_t async = ncclSuccess;
      if (ncclCommGetAsyncError(comm_, &async) != ncclSuccess || (async != ncclSuccess && async != ncclInProgress))
        return str_cat("NCCL asynchronous error: ", ncclGetErrorString(async));
      return std::nullopt;
    };
    w.on_expire = [this](const std::string& why) {
      ncclCommAbort(comm_);
      abort_world(why);
    };
    watchdog_ = std::make_unique<CollectiveWatchdog>(w);
  }

  ~NcclCommunicator() override {
    watchdog_.reset();  // stop polling before the communicator goes
    cudaStreamSynchronize(stream_);
    ncclCommDestroy(comm_);
    cudaFree(barrier_flag_);
    if (owns_stream_) cudaStreamDestroy(stream_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  bool buffers_on_device() const override { return true; }
  std::string backend_name() const override { return "nccl"; }
  void* device_stream() const override { return stream_; }
  void synchronize() override { FERRY_CUDA(cudaStreamSynchronize(stream_)); }

  void all_reduce(void* data, size_t count, DType type, ReduceOp op) override {
    FERRY_NCCL(ncclAllReduce(data, data, count, nccl_type(type), nccl_op(op), comm_, stream_));
    track("all_reduce");
  }
  void reduce_scatter(const void* send, void* recv, size_t block_count, DType type, ReduceOp op) override {
    FERRY_NCCL(ncclReduceScatter(send, recv, block_count, nccl_type(type), nccl_op(op), comm_, stream_));
    track("reduce_scatter");
  }
  void all_gather(const void* send, void* recv, size_t block_count, DType type) override {
    FERRY_NCCL(ncclAllGather(send, recv, block_count, nccl_type(type), comm_, stream_));
    track("all_gather");
  }
  void broadcast(void* data, size_t count, DType type, int root) override {
    check_peer(root, "broadcast root");
    FERRY_NCCL(ncclBroadcast(data, data, count, nccl_type(type), root, comm_, stream_));
    track("broadcast");
  }
  void send(const void* data, size_t count, DType type, int peer) override {
    check_peer(peer, "send");
    FERRY_NCCL(ncclSend(data, count, nccl_type(type), peer, comm_, stream_));
    track("send");
  }
  void recv(void* data, size_t count, DType type, int peer) override {
    check_peer(peer, "recv");
    FERRY_NCCL(ncclRecv(data, count, nccl_type(type), peer, comm_, stream_));
    track("recv");
  }
  void send_recv(const void* send_data, size_t send_count, int dest, void* recv_data, size_t recv_count, int source,
                 DType type) override {
    check_peer(dest, "send_recv destination");
    check_peer(source, "send_recv source");
    // One group: NCCL runs both halves together, so neighbours exchanging cannot deadlock.
    FERRY_NCCL(ncclGroupStart());
    FERRY_NCCL(ncclSend(send_data, send_count, nccl_type(type), dest, comm_, stream_));
    FERRY_NCCL(ncclRecv(recv_data, recv_count, nccl_type(type), source, comm_, stream_));
    FERRY_NCCL(ncclGroupEnd());
    track("send_recv");
  }
  void barrier() override {
    FERRY_NCCL(ncclAllReduce(barrier_flag_, barrier_flag_, 1, ncclInt32, ncclSum, comm_, stream_));
    track("barrier");
    FERRY_CUDA(cudaStreamSynchronize(stream_));
  }

  std::unique_ptr<Communicator> split(int color, int key) override {
    ncclComm_t sub = nullptr;
    FERRY_NCCL(ncclCommSplit(comm_, color < 0 ? NCCL_SPLIT_NOCOLOR : color, key, &sub, nullptr));
    if (sub == nullptr) return nullptr;
    // Its own stream: a TP all-reduce does not queue behind the DP buckets pending on another
    // group's stream (events order each against the compute stream, parallel/device_collectives.h).
    FERRY_CUDA(cudaSetDevice(device_));
    cudaStream_t stream = nullptr;
    FERRY_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    return std::make_unique<NcclCommunicator>(sub, device_, stream, true, timeout_);
  }

 private:
  // Gives the watchdog a way to see this operation finish.
  void track(const char* what) {
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    FERRY_CUDA(cudaStreamIsCapturing(stream_, &capture));
    if (capture != cudaStreamCaptureStatusNone) return;
    cudaEvent_t done = events_.acquire();
    FERRY_CUDA(cudaEventRecord(done, stream_));
    watchdog_->watch_async(str_cat("NCCL ", what, " (rank ", rank_, " of ", size_, ")"), [this, done] {
      if (cudaEventQuery(done) == cudaErrorNotReady) return false;
      events_.release(done);
      return true;
    });
  }

  ncclComm_t comm_;
  int device_;
  cudaStream_t stream_;
  bool owns_stream_;
  std::chrono::milliseconds timeout_;
  int rank_ = 0;
  int size_ = 1;
  int32_t* barrier_flag_ = nullptr;
  EventPool events_;
  std::unique_ptr<CollectiveWatchdog> watchdog_;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap, const NcclOptions& options) {
  FERRY_CHECK(!bootstrap.buffers_on_device(), "the NCCL bootstrap needs a host communicator");
  FERRY_CUDA(cudaSetDevice(options.device));
  // ncclUniqueId is an opaque 128-byte blob; it travels as int32 words.
  static_assert(sizeof(ncclUniqueId) % sizeof(int32_t) == 0);
  ncclUniqueId id;
  std::memset(&id, 0, sizeof(id));
  if (bootstrap.rank() == 0) FERRY_NCCL(ncclGetUniqueId(&id));
  bootstrap.broadcast(&id, sizeof(id) / sizeof(int32_t), DType::i32, 0);

  ncclComm_t comm = nullptr;
  FERRY_NCCL(ncclCommInitRank(&comm, bootstrap.size(), id, bootstrap.rank()));
  cudaStream_t stream = reinterpret_cast<cudaStream_t>(options.stream);
  const bool owns = stream == nullptr;
  if (owns) FERRY_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  return std::make_unique<NcclCommunicator>(comm, options.device, stream, owns, options.collective_timeout);
}

}  // namespace ferry::parallel
