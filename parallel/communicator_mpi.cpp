// parallel/communicator_mpi.cpp
#include "parallel/communicator_mpi.h"

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <exception>
#include <optional>
#include <vector>

#include "base/error.h"
#include "parallel/failure.h"
#include "parallel/watchdog.h"

namespace ferry::parallel {
namespace {

void on_mpi_error(MPI_Comm*, int* code, ...) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(*code, text, &length);
  abort_world(str_cat("MPI error: ", std::string(text, length)));
}

MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::f32: return MPI_FLOAT;
    case DType::f64: return MPI_DOUBLE;
    case DType::i32: return MPI_INT32_T;
  }
  FERRY_CHECK(false, "unknown DType");
}

int mpi_count(size_t count) {
  FERRY_CHECK(count <= static_cast<size_t>(INT_MAX), "MPI message of ", count, " elements exceeds INT_MAX");
  return static_cast<int>(count);
}

// out[k] = op over contributions i = 0, 1, …, p−1 of block[i·n + k], folded left in rank order.
template <typename T>
void fold_in_rank_order(const T* blocks, size_t n, int p, ReduceOp op, T* out) {
  for (size_t k = 0; k < n; ++k) out[k] = blocks[k];
  for (int i = 1; i < p; ++i) {
    const T* b = blocks + static_cast<size_t>(i) * n;
    if (op == ReduceOp::sum)
      for (size_t k = 0; k < n; ++k) out[k] += b[k];
    else
      for (size_t k = 0; k < n; ++k) out[k] = out[k] < b[k] ? b[k] : out[k];
  }
}

void fold(const void* blocks, size_t n, int p, DType t, ReduceOp op, void* out) {
  switch (t) {
    case DType::f32: return fold_in_rank_order(static_cast<const float*>(blocks), n, p, op, static_cast<float*>(out));
    case DType::f64: return fold_in_rank_order(static_cast<const double*>(blocks), n, p, op, static_cast<double*>(out));
    case DType::i32: return fold_in_rank_order(static_cast<const int32_t*>(blocks), n, p, op, static_cast<int32_t*>(out));
  }
}

// Deterministic all-reduce moves the buffer in pieces of at most this many elements, so that MPI's
// int counts never overflow; each element's fold is independent of the piece it is in.
constexpr size_t kAllReducePiece = size_t{1} << 28;

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(MPI_Comm comm, std::shared_ptr<CollectiveWatchdog> watchdog)
      : comm_(comm), watchdog_(std::move(watchdog)) {
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
  }
  ~MpiCommunicator() override {
    if (MpiSession::active()) MPI_Comm_free(&comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  bool buffers_on_device() const override { return false; }
  std::string backend_name() const override { return "mpi"; }

  void all_reduce(void* data, size_t count, DType type, ReduceOp op) override {
    auto guard = watch("all_reduce");
    if (op == ReduceOp::max || type == DType::i32) {
      MPI_Allreduce(MPI_IN_PLACE, data, mpi_count(count), mpi_type(type), op == ReduceOp::max ? MPI_MAX : MPI_SUM, comm_);
      return;
    }
    const size_t esize = dtype_size(type);
    for (size_t done = 0; done < count; done += kAllReducePiece)
      ordered_all_reduce(static_cast<char*>(data) + done * esize, std::min(kAllReducePiece, count - done), type, op);
  }

  void reduce_scatter(const void* send, void* recv, size_t block_count, DType type, ReduceOp op) override {
    auto guard = watch("reduce_scatter");
    const size_t esize = dtype_size(type);
    scratch_.resize(block_count * esize * size_);
    MPI_Alltoall(send, mpi_count(block_count), mpi_type(type), scratch_.data(), mpi_count(block_count), mpi_type(type),
                 comm_);
    fold(scratch_.data(), block_count, size_, type, op, recv);
  }

  void all_gather(const void* send, void* recv, size_t block_count, DType type) override {
    auto guard = watch("all_gather");
    const size_t esize = dtype_size(type);
    // MPI forbids overlapping send and receive buffers; MPI_IN_PLACE covers the case where the
    // caller's block already sits at its place in `recv`.
    const bool in_place = send == static_cast<char*>(recv) + rank_ * block_count * esize;
    MPI_Allgather(in_place ? MPI_IN_PLACE : send, mpi_count(block_count), mpi_type(type), recv, mpi_count(block_count),
                  mpi_type(type), comm_);
  }

  void broadcast(void* data, size_t count, DType type, int root) override {
    check_peer(root, "broadcast root");
    auto guard = watch("broadcast");
    MPI_Bcast(data, mpi_count(count), mpi_type(type), root, comm_);
  }

  void send(const void* data, size_t count, DType type, int peer) override {
    check_peer(peer, "send");
    auto guard = watch("send");
    MPI_Send(data, mpi_count(count), mpi_type(type), peer, kTag, comm_);
  }

  void recv(void* data, size_t count, DType type, int peer) override {
    check_peer(peer, "recv");
    auto guard = watch("recv");
    MPI_Status status;
    MPI_Recv(data, mpi_count(count), mpi_type(type), peer, kTag, comm_, &status);
    check_received(status, count, type, peer);
  }

  void send_recv(const void* send_data, size_t send_count, int dest, void* recv_data, size_t recv_count, int source,
                 DType type) override {
    check_peer(dest, "send_recv destination");
    check_peer(source, "send_recv source");
    auto guard = watch("send_recv");
    MPI_Status status;
    MPI_Sendrecv(send_data, mpi_count(send_count), mpi_type(type), dest, kTag, recv_data, mpi_count(recv_count),
                 mpi_type(type), source, kTag, comm_, &status);
    check_received(status, recv_count, type, source);
  }

  void barrier() override {
    auto guard = watch("barrier");
    MPI_Barrier(comm_);
  }

  std::unique_ptr<Communicator> split(int color, int key) override {
    auto guard = watch("split");
    MPI_Comm sub = MPI_COMM_NULL;
    MPI_Comm_split(comm_, color < 0 ? MPI_UNDEFINED : color, key, &sub);
    if (sub == MPI_COMM_NULL) return nullptr;
    return std::make_unique<MpiCommunicator>(sub, watchdog_);
  }

 private:
  // One tag: MPI keeps messages between a pair of ranks on one communicator in order.
  static constexpr int kTag = 7;

  std::optional<CollectiveWatchdog::Guard> watch(const char* what) {
    if (!watchdog_) return std::nullopt;
    return watchdog_->watch(str_cat("MPI ", what, " (rank ", rank_, " of ", size_, ")"));
  }

  void check_received(const MPI_Status& status, size_t count, DType type, int peer) {
    int got = 0;
    MPI_Get_count(&status, mpi_type(type), &got);
    FERRY_CHECK(static_cast<size_t>(got) == count, "recv from rank ", peer, " expected ", count, " ",
                dtype_name(type), ", the message had ", got);
  }

  // Block i of the piece (near-equal sizes) is folded on rank i, then everyone gathers the blocks.
  void ordered_all_reduce(char* data, size_t count, DType type, ReduceOp op) {
    const size_t esize = dtype_size(type);
    std::vector<int> counts(size_), offsets(size_);
    const size_t base = count / size_, extra = count % size_;
    size_t offset = 0;
    for (int i = 0; i < size_; ++i) {
      counts[i] = static_cast<int>(base + (static_cast<size_t>(i) < extra ? 1 : 0));
      offsets[i] = static_cast<int>(offset);
      offset += counts[i];
    }
    const int mine = counts[rank_];
    std::vector<int> recv_counts(size_, mine), recv_offsets(size_);
    for (int i = 0; i < size_; ++i) recv_offsets[i] = i * mine;
    scratch_.resize(static_cast<size_t>(mine) * size_ * esize);
    MPI_Alltoallv(data, counts.data(), offsets.data(), mpi_type(type), scratch_.data(), recv_counts.data(),
                  recv_offsets.data(), mpi_type(type), comm_);
    folded_.resize(static_cast<size_t>(mine) * esize);
    fold(scratch_.data(), mine, size_, type, op, folded_.data());
    MPI_Allgatherv(folded_.data(), mine, mpi_type(type), data, counts.data(), offsets.data(), mpi_type(type), comm_);
  }

  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
  std::shared_ptr<CollectiveWatchdog> watchdog_;
  std::vector<char> scratch_;
  std::vector<char> folded_;
};

}  // namespace

MpiSession::MpiSession(int* argc, char*** argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided);
    started_here_ = true;
  }
  MPI_Errhandler handler;
  MPI_Comm_create_errhandler(on_mpi_error, &handler);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, handler);
  MPI_Errhandler_free(&handler);

  MPI_Comm_rank(MPI_COMM_WORLD, &placement_.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &placement_.size);
  set_failure_rank(placement_.rank);
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, placement_.rank, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &placement_.local_rank);
  MPI_Comm_size(node, &placement_.local_size);
  MPI_Comm_free(&node);
  try {
    launch_ = reconcile_with_mpi(detect_launch_env(), placement_);
  } catch (const UserError& e) {
    abort_world(e.what());  // a broken launch: every rank sees it, none may go on alone
  }
}

MpiSession::~MpiSession() {
  // Finalizing while peers wait in a collective hangs the job (OpenMPI 4.1, measured); an exception
  // that unwinds past the session means this rank cannot go on, so it takes the others down.
  if (std::uncaught_exceptions() > 0 && active() && placement_.size > 1)
    abort_world("an exception escaped past MPI (use run_rank to report its message)");
  if (started_here_ && active()) MPI_Finalize();
}

bool MpiSession::active() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

std::unique_ptr<Communicator> make_mpi_world_communicator(const MpiOptions& options) {
  FERRY_CHECK(MpiSession::active(), "make_mpi_world_communicator needs an MpiSession");
  std::shared_ptr<CollectiveWatchdog> watchdog;
  if (options.collective_timeout.count() > 0) {
    CollectiveWatchdog::Options w;
    w.timeout = options.collective_timeout;
    watchdog = std::make_shared<CollectiveWatchdog>(w);
  }
  MPI_Comm world;
  MPI_Comm_dup(MPI_COMM_WORLD, &world);
  return std::make_unique<MpiCommunicator>(world, std::move(watchdog));
}

}  // namespace ferry::parallel
