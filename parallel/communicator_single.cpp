// parallel/communicator_single.cpp — the communicator of a one-process run.
// Every collective over one rank is the identity (or a copy between distinct buffers), so a run
// without a launcher goes through exactly the same code as a parallel one.
#include <cstring>
#include <deque>
#include <vector>

#include "base/error.h"
#include "parallel/communicator.h"

namespace ferry::parallel {
namespace {

class SingleCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  bool buffers_on_device() const override { return false; }
  std::string backend_name() const override { return "single"; }

  void all_reduce(void*, size_t, DType, ReduceOp) override {}
  void reduce_scatter(const void* send, void* recv, size_t block_count, DType type, ReduceOp) override {
    copy(send, recv, block_count, type);
  }
  void all_gather(const void* send, void* recv, size_t block_count, DType type) override {
    copy(send, recv, block_count, type);
  }
  void broadcast(void*, size_t, DType, int root) override { check_peer(root, "broadcast root"); }

  // A pipeline of one stage never sends, but a loop written for any stage count may send to
  // itself; a FIFO keeps that correct.
  void send(const void* data, size_t count, DType type, int peer) override {
    check_peer(peer, "send");
    const auto* bytes = static_cast<const char*>(data);
    pending_.push_back(Message{type, std::vector<char>(bytes, bytes + count * dtype_size(type))});
  }
  void recv(void* data, size_t count, DType type, int peer) override {
    check_peer(peer, "recv");
    FERRY_CHECK(!pending_.empty(), "recv from self with nothing sent: it would wait forever");
    const Message& m = pending_.front();
    FERRY_CHECK(m.type == type && m.bytes.size() == count * dtype_size(type), "recv of ", count, " ",
                dtype_name(type), " does not match the message sent (", m.bytes.size(), " bytes of ",
                dtype_name(m.type), ")");
    std::memcpy(data, m.bytes.data(), m.bytes.size());
    pending_.pop_front();
  }
  void send_recv(const void* send_data, size_t send_count, int dest, void* recv_data, size_t recv_count, int source,
                 DType type) override {
    send(send_data, send_count, type, dest);
    recv(recv_data, recv_count, type, source);
  }
  void barrier() override {}

  std::unique_ptr<Communicator> split(int color, int) override {
    if (color < 0) return nullptr;
    return std::make_unique<SingleCommunicator>();
  }

 private:
  static void copy(const void* from, void* to, size_t count, DType type) {
    if (from != to) std::memmove(to, from, count * dtype_size(type));
  }

  struct Message {
    DType type;
    std::vector<char> bytes;
  };
  std::deque<Message> pending_;
};

}  // namespace

std::unique_ptr<Communicator> make_single_communicator() { return std::make_unique<SingleCommunicator>(); }

}  // namespace ferry::parallel
