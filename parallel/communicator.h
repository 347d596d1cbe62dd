// parallel/communicator.h — the one interface every collective in ferry goes through.
//
// Three implementations, one per place the buffers live:
//   single process  make_single_communicator()            (parallel/communicator_single.cpp)
//   MPI, host        parallel/communicator_mpi.h           (CPU tensors: every layout runs without a GPU)
//   NCCL, device     parallel/communicator_nccl.h          (bootstrapped over MPI)
// A caller asks buffers_on_device() to know which kind of pointer a communicator takes.
//
// Semantics shared by all implementations (NCCL's, so that the graph passes are written once):
//   - all_reduce is in place; every rank ends with the same values.
//   - reduce_scatter: `send` holds size() blocks of `block_count` elements; rank r receives block r
//     reduced over all ranks. Callers pad flat buffers to a multiple of size() (ZeRO-1 shards).
//   - all_gather: every rank contributes `block_count` elements; `recv` holds size() blocks in rank
//     order.
//   - send/recv address a peer by its rank in this communicator; messages between one pair of ranks
//     arrive in the order they were sent (no tags needed). send_recv does both at once, so two
//     neighbouring pipeline stages exchanging activations and gradients cannot deadlock.
//   - Host communicators return when the operation is complete; device communicators enqueue on
//     their stream and return (the stream orders what follows).
//   - Floating-point sums are deterministic: the same inputs give bitwise the same result on every
//     run and every rank. Each implementation says how it guarantees that.
//   - Misuse (peer out of range, wrong root) is a bug in the caller: FERRY_CHECK, not UserError.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <type_traits>

namespace ferry::parallel {

enum class DType { f32, f64, i32 };
enum class ReduceOp { sum, max };

size_t dtype_size(DType t);
const char* dtype_name(DType t);
const char* reduce_op_name(ReduceOp op);

template <typename T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>) return DType::f32;
  else if constexpr (std::is_same_v<T, double>) return DType::f64;
  else if constexpr (std::is_same_v<T, int32_t>) return DType::i32;
  else static_assert(!sizeof(T), "communicators carry float, double and int32_t");
}

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // True when buffers are device pointers (NCCL); false for host pointers (single process, MPI).
  virtual bool buffers_on_device() const = 0;
  // "single", "mpi", "nccl": for logs and error messages.
  virtual std::string backend_name() const = 0;
  // Device communicators: the stream (a cudaStream_t) their operations are enqueued on, for the
  // events that order them against other work (engine/train/step_queues.h), and a host wait for
  // all of it. Host communicators: nullptr, and nothing to wait for.
  virtual void* device_stream() const { return nullptr; }
  virtual void synchronize() {}

  virtual void all_reduce(void* data, size_t count, DType type, ReduceOp op) = 0;
  virtual void reduce_scatter(const void* send, void* recv, size_t block_count, DType type, ReduceOp op) = 0;
  virtual void all_gather(const void* send, void* recv, size_t block_count, DType type) = 0;
  virtual void broadcast(void* data, size_t count, DType type, int root) = 0;
  virtual void send(const void* data, size_t count, DType type, int peer) = 0;
  virtual void recv(void* data, size_t count, DType type, int peer) = 0;
  // Sends to `dest` and receives from `source` as one operation (either may be the same peer).
  virtual void send_recv(const void* send_data, size_t send_count, int dest, void* recv_data, size_t recv_count,
                         int source, DType type) = 0;
  virtual void barrier() = 0;

  // Sub-communicator of the ranks that passed the same `color`, ranked by `key` (ties by rank).
  // Collective over this communicator. A negative color takes part but gets nullptr back.
  virtual std::unique_ptr<Communicator> split(int color, int key) = 0;

  // Typed forms: the element type names the DType, the span carries the count.
  template <typename T>
  void all_reduce(std::span<T> data, ReduceOp op = ReduceOp::sum) {
    all_reduce(data.data(), data.size(), dtype_of<T>(), op);
  }
  template <typename T>
  void reduce_scatter(std::span<const T> send, std::span<T> recv, ReduceOp op = ReduceOp::sum) {
    check_blocks(send.size(), recv.size());
    reduce_scatter(send.data(), recv.data(), recv.size(), dtype_of<T>(), op);
  }
  template <typename T>
  void all_gather(std::span<const T> send, std::span<T> recv) {
    check_blocks(recv.size(), send.size());
    all_gather(send.data(), recv.data(), send.size(), dtype_of<T>());
  }
  template <typename T>
  void broadcast(std::span<T> data, int root) {
    broadcast(data.data(), data.size(), dtype_of<T>(), root);
  }
  template <typename T>
  void send(std::span<const T> data, int peer) {
    send(data.data(), data.size(), dtype_of<T>(), peer);
  }
  template <typename T>
  void recv(std::span<T> data, int peer) {
    recv(data.data(), data.size(), dtype_of<T>(), peer);
  }

 protected:
  // `whole` must be size() blocks of `block` elements.
  void check_blocks(size_t whole, size_t block) const;
  void check_peer(int peer, const char* what) const;
};

// Rank 0 of a world of one: collectives are identities or copies, send/recv to oneself is a FIFO.
std::unique_ptr<Communicator> make_single_communicator();

}  // namespace ferry::parallel
