// tests/parallel/dp_schedule_test.cpp — the runner's data-parallel reduction on a CUDA backend with
// a device communicator (NCCL) is issued in an order a CUDA graph can capture, checked without a
// GPU: the bucket schedule (parallel/data_parallel.h) is driven exactly as the CUDA device step
// drives it (engine/cuda/device_step.cpp: the hooks of GradientBuckets around the last
// micro-batch's backward, on the step's two queues), here with recording queues, a recording
// communicator (device buffers, two ranks, the peer's gradients equal to ours) and a backend that
// records host waits, all on one timeline with the backward nodes. The timeline must show:
//   - no host wait (backend synchronize/download, communicator synchronize/barrier) anywhere
//     between the first queue operation and the compute queue's wait for the comm queue;
//   - for every bucket: its event recorded on compute after every backward node that writes a
//     gradient inside it (found from the graph, not from the schedule), the comm queue waiting on
//     it, then widen, the all-reduce of exactly that widened range, narrow, each once;
//   - buckets reduced while backward still runs, and the frozen parameters' buckets (nothing
//     writes them) after it, so every rank issues the same collectives;
//   - the comm queue's last event recorded after the last narrow, and the compute queue waiting
//     on it before the optimizer;
//   - the buckets tile the gradient buffer, and the gradients end as the sum over both ranks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "engine/autodiff.h"
#include "engine/executor.h"
#include "engine/model/gpt.h"
#include "parallel/data_parallel.h"
#include "tests/parallel/host_wait_backend.h"

namespace ferry {
namespace {

using parallel::DpOpKind;

struct Entry {
  enum Kind { node, backward_end, record, wait, widen, narrow, all_reduce, host_wait, optimizer } kind;
  Queue queue = Queue::compute;
  int index = -1;  // node, event or bucket begin
  const void* ptr = nullptr;
  size_t count = 0;
  std::string what;
};

using Timeline = std::vector<Entry>;

// The step's queues as the CUDA step has them: widen copies the bucket into a separate fp32 reduce
// buffer at the same offsets, narrow copies it back. On the CPU both run when issued.
class RecordingQueues final : public GradientQueues {
 public:
  RecordingQueues(Timeline& t, float* grads, size_t n) : t_(t), grads_(grads), reduce_(n, -1.0f) {}
  void record(Queue q, int e) override { t_.push_back({Entry::record, q, e}); }
  void wait(Queue q, int e) override { t_.push_back({Entry::wait, q, e}); }
  float* widen(size_t begin, size_t count) override {
    t_.push_back({Entry::widen, Queue::comm, static_cast<int>(begin), nullptr, count});
    std::copy(grads_ + begin, grads_ + begin + count, reduce_.data() + begin);
    return reduce_.data() + begin;
  }
  void narrow(size_t begin, size_t count) override {
    t_.push_back({Entry::narrow, Queue::comm, static_cast<int>(begin), nullptr, count});
    std::copy(reduce_.data() + begin, reduce_.data() + begin + count, grads_ + begin);
  }

 private:
  Timeline& t_;
  float* grads_;
  std::vector<float> reduce_;
};

// Rank 0 of two on device buffers, NCCL-like: all-reduce adds an equal peer's contribution.
// Any other collective is a failure here (the DP reduction needs none).
class RecordingCommunicator final : public parallel::Communicator {
 public:
  explicit RecordingCommunicator(Timeline& t) : t_(t) {}
  int rank() const override { return 0; }
  int size() const override { return 2; }
  bool buffers_on_device() const override { return true; }
  std::string backend_name() const override { return "recording"; }
  void synchronize() override { t_.push_back({Entry::host_wait, Queue::comm, -1, nullptr, 0, "communicator synchronize"}); }
  void all_reduce(void* data, size_t count, parallel::DType type, parallel::ReduceOp op) override {
    EXPECT_EQ(type, parallel::DType::f32);
    EXPECT_EQ(op, parallel::ReduceOp::sum);
    t_.push_back({Entry::all_reduce, Queue::comm, -1, data, count});
    float* x = static_cast<float*>(data);
    for (size_t i = 0; i < count; ++i) x[i] += x[i];
  }
  void reduce_scatter(const void*, void*, size_t, parallel::DType, parallel::ReduceOp) override { unexpected("reduce_scatter"); }
  void all_gather(const void*, void*, size_t, parallel::DType) override { unexpected("all_gather"); }
  void broadcast(void*, size_t, parallel::DType, int) override { unexpected("broadcast"); }
  void send(const void*, size_t, parallel::DType, int) override { unexpected("send"); }
  void recv(void*, size_t, parallel::DType, int) override { unexpected("recv"); }
  void send_recv(const void*, size_t, int, void*, size_t, int, parallel::DType) override { unexpected("send_recv"); }
  void barrier() override { t_.push_back({Entry::host_wait, Queue::comm, -1, nullptr, 0, "communicator barrier"}); }
  std::unique_ptr<Communicator> split(int, int) override {
    unexpected("split");
    return nullptr;
  }

 private:
  void unexpected(const char* what) { ADD_FAILURE() << what << " issued by the DP reduction"; }
  Timeline& t_;
};

GptConfig small() {
  GptConfig c;
  c.preset = "dp-schedule-test";
  c.n_layer = 3;
  c.n_head = 2;
  c.n_embd = 32;
  c.vocab_size = 96;
  c.max_seq_len = 16;
  return c;
}

struct Model {
  Graph g;
  int tokens = -1, targets = -1;
};

// Layer 0 frozen (no gradients), so some buckets have no writer.
Model model() {
  GptBuildOptions o;
  o.batch = 2;
  o.seq_len = 8;
  GptGraph built = build_gpt(small(), o);
  Model m{std::move(built.graph), built.tokens, built.targets};
  for (ParamInfo& p : m.g.params) p.trainable = p.layer != 0;
  derive_backward(m.g);
  return m;
}

void load(Executor& ex, const Model& m) {
  std::vector<double> init;
  init_gpt_params(m.g, small(), 5, init);
  ex.set_parameters({init.begin(), init.end()});
  std::vector<int32_t> x(16), y(16);
  for (int i = 0; i < 16; ++i) {
    x[i] = (7 * i + 3) % 96;
    y[i] = (11 * i + 5) % 96;
  }
  ex.set_input(m.tokens, x.data(), x.size() * sizeof(int32_t));
  ex.set_input(m.targets, y.data(), y.size() * sizeof(int32_t));
}

size_t find(const Timeline& t, size_t from, const std::function<bool(const Entry&)>& match) {
  for (size_t i = from; i < t.size(); ++i)
    if (match(t[i])) return i;
  return t.size();
}

TEST(DpSchedule, CollectivesOnACudaBackendAreIssuedInACapturableOrder) {
  const Model m = model();
  Timeline t;
  test::HostWaitBackend backend([&t](const std::string& what, const void* ptr, size_t bytes) {
    t.push_back({Entry::host_wait, Queue::compute, -1, ptr, bytes, what});
  });
  Executor ex(m.g, backend);
  load(ex, m);
  const size_t n = static_cast<size_t>(m.g.storage_size());
  float* grads = ex.grads().as<float>();

  // One process's gradients: the reference.
  ex.zero_grads();
  ex.forward(true);
  ex.backward();
  const std::vector<float> one(grads, grads + n);

  RecordingCommunicator dp(t);
  parallel::GradientBuckets buckets(m.g, static_cast<int>(m.g.params.size()), 2000, dp);
  const parallel::DpSchedule& s = buckets.schedule();
  ASSERT_GE(s.buckets.size(), 5u) << "too few buckets for the check to mean anything";

  // The device step's body (engine/cuda/device_step.cpp, run_micro_batch of the last micro-batch).
  RecordingQueues queues(t, grads, n);
  GradientHooks hooks = buckets.hooks();
  ex.zero_grads();
  ex.forward(true);
  t.clear();
  hooks.begin(queues);
  ex.set_after_node([&](int node) {
    t.push_back({Entry::node, Queue::compute, node});
    hooks.after_node(node);
  });
  ex.backward();
  ex.set_after_node({});
  t.push_back({Entry::backward_end});
  hooks.finish();
  t.push_back({Entry::optimizer});

  // No host wait from the first queue operation to the end (the optimizer included).
  const size_t first = find(t, 0, [](const Entry& e) { return e.kind != Entry::node; });
  ASSERT_LT(first, t.size());
  for (size_t i = first; i < t.size(); ++i) EXPECT_NE(t[i].kind, Entry::host_wait) << "host wait: " << t[i].what;

  // The buckets tile [0, storage): contiguous, in storage order, covering every parameter.
  size_t at = s.buckets.front().begin;
  EXPECT_EQ(at, m.g.params.front().storage);
  for (const parallel::GradientBucket& b : s.buckets) {
    EXPECT_EQ(b.begin, at);
    at = b.begin + b.size;
  }
  EXPECT_EQ(at, m.g.params.back().storage + static_cast<size_t>(m.g.params.back().storage_numel));

  const size_t last_node = find(t, 0, [&](const Entry& e) {
    return e.kind == Entry::node && e.index == static_cast<int>(m.g.nodes.size()) - 1;
  });
  ASSERT_LT(last_node, t.size()) << "the last backward node never ran";
  const size_t backward_end = find(t, 0, [](const Entry& e) { return e.kind == Entry::backward_end; });
  int reduced_during_backward = 0, issued_in_backward = 0, unwritten = 0;
  size_t last_narrow = 0;
  for (size_t k = 0; k < s.buckets.size(); ++k) {
    SCOPED_TRACE("bucket " + std::to_string(k));
    const parallel::GradientBucket& b = s.buckets[k];
    // Where the last backward node writing into this bucket ran, from the graph.
    size_t written = 0;
    bool any = false;
    for (int i = m.g.num_forward_nodes; i < static_cast<int>(m.g.nodes.size()); ++i)
      for (int v : m.g.nodes[i].out) {
        if (v < 0 || m.g.values[v].role != ValueRole::ParamGrad) continue;
        const ParamInfo& p = m.g.params[m.g.values[v].param];
        if (p.storage < b.begin || p.storage >= b.begin + b.size) continue;
        any = true;
        written = std::max(written, find(t, 0, [&](const Entry& e) { return e.kind == Entry::node && e.index == i; }));
      }
    unwritten += !any;
    const int event = static_cast<int>(k);
    auto once = [&](Entry::Kind kind, Queue q, int index) {
      auto match = [&](const Entry& e) { return e.kind == kind && e.queue == q && e.index == index; };
      const size_t i = find(t, 0, match);
      EXPECT_EQ(find(t, i + 1, match), t.size()) << "issued twice";
      return i;
    };
    const size_t record = once(Entry::record, Queue::compute, event);
    const size_t wait = once(Entry::wait, Queue::comm, event);
    const size_t widen = once(Entry::widen, Queue::comm, static_cast<int>(b.begin));
    const size_t narrow = once(Entry::narrow, Queue::comm, static_cast<int>(b.begin));
    ASSERT_LT(narrow, t.size());
    EXPECT_GT(record, written) << "event recorded before the bucket's last gradient was written";
    EXPECT_LT(record, wait);
    EXPECT_LT(wait, widen);
    EXPECT_EQ(t[widen].count, b.size);
    // The all-reduce of exactly this range, widened, between widen and narrow.
    const size_t reduce = find(t, widen, [](const Entry& e) { return e.kind == Entry::all_reduce; });
    ASSERT_LT(reduce, narrow) << "no all-reduce between widen and narrow";
    EXPECT_EQ(t[reduce].count, b.size);
    EXPECT_EQ(t[narrow].count, b.size);
    if (!any) EXPECT_GT(record, last_node) << "a bucket nothing writes goes after backward";
    reduced_during_backward += reduce < last_node;
    issued_in_backward += reduce < backward_end;
    last_narrow = std::max(last_narrow, narrow);
  }
  EXPECT_GE(reduced_during_backward, 2) << "buckets should be reduced while backward runs";
  EXPECT_EQ(issued_in_backward, buckets.reduced_during_backward());
  EXPECT_GE(unwritten, 1) << "the frozen layer should leave a bucket nothing writes";
  EXPECT_EQ(std::count_if(t.begin(), t.end(), [](const Entry& e) { return e.kind == Entry::all_reduce; }),
            static_cast<long>(s.buckets.size()));

  // The join: comm's last event after the last narrow, compute waits for it before the optimizer.
  const size_t done = find(t, 0, [&](const Entry& e) {
    return e.kind == Entry::record && e.queue == Queue::comm && e.index == s.done_event;
  });
  const size_t join = find(t, 0, [&](const Entry& e) {
    return e.kind == Entry::wait && e.queue == Queue::compute && e.index == s.done_event;
  });
  const size_t optimizer = find(t, 0, [](const Entry& e) { return e.kind == Entry::optimizer; });
  EXPECT_GT(done, last_narrow);
  EXPECT_GT(join, done);
  EXPECT_LT(join, optimizer);
  EXPECT_GT(join, last_node);

  // The comm queue issues nothing that is not ordered after one of its waits.
  const size_t first_comm_wait = find(t, 0, [](const Entry& e) { return e.kind == Entry::wait && e.queue == Queue::comm; });
  for (size_t i = 0; i < first_comm_wait; ++i)
    EXPECT_FALSE(t[i].queue == Queue::comm && t[i].kind != Entry::node) << "comm work before any wait at " << i;

  // The sum over two equal ranks: exactly twice one process's gradients, gaps and frozen zeros included.
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(grads[i], 2 * one[i]) << "gradient element " << i;
}

// The schedule is data every rank builds the same: the same operations from the same graph, each
// bucket's operations in the order above, the nodes ascending.
TEST(DpSchedule, IsTheSameOnEveryBuildAndOrderedByNode) {
  const Model m = model();
  const auto a = parallel::make_dp_schedule(m.g, static_cast<int>(m.g.params.size()), 2000);
  const auto b = parallel::make_dp_schedule(m.g, static_cast<int>(m.g.params.size()), 2000);
  ASSERT_EQ(a.ops.size(), b.ops.size());
  ASSERT_EQ(a.ops.size(), 5 * a.buckets.size() + 2);
  int previous = m.g.num_forward_nodes;
  bool after_backward = false;
  for (size_t i = 0; i < a.ops.size(); ++i) {
    EXPECT_EQ(parallel::to_string(a.ops[i]), parallel::to_string(b.ops[i]));
    if (a.ops[i].after_node < 0) {
      after_backward = true;
    } else {
      EXPECT_FALSE(after_backward) << "node-tagged op after the after-backward ones: " << parallel::to_string(a.ops[i]);
      EXPECT_GE(a.ops[i].after_node, previous) << parallel::to_string(a.ops[i]);
      previous = a.ops[i].after_node;
    }
  }
  // One bucket when the size exceeds the model; the same operations around it.
  const auto one = parallel::make_dp_schedule(m.g, static_cast<int>(m.g.params.size()), size_t{1} << 30);
  ASSERT_EQ(one.buckets.size(), 1u);
  EXPECT_EQ(parallel::to_string(one.ops[3]), "after node " + std::to_string(one.buckets[0].last_writer) +
                                                 ": all_reduce comm bucket 0");
}

}  // namespace
}  // namespace ferry
