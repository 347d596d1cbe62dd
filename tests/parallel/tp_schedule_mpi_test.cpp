// tests/parallel/tp_schedule_mpi_test.cpp — the runner's tensor-parallel collectives on a CUDA
// backend with a device communicator (NCCL) are issued in an order a CUDA graph can capture,
// checked without a GPU. A TP2 rank graph of a tiny GPT, built as the step factory builds it
// (parallel/step_factory.h: prepare_rank_graph, the tensor-parallel rewrite), is driven through an
// Executor on the CPU backend the way the CUDA device step drives its step (engine/cuda/
// device_step.cpp, body(): zero the gradients, forward, backward, Σg² over this rank's counted
// segments summed over the model group, no loss read until the end), with
//   - recording queues installed in the TP group's registration (parallel/collective_groups.h)
//     and for the norm's sum, where the CUDA runner has its stream queues;
//   - recording communicators that wrap the real TP and model communicators of the 2-rank world and
//     say buffers_on_device() = true, so every collective takes the device path of
//     parallel/device_collectives.h (issue_all_reduce);
//   - a backend that records host waits (download, synchronize);
// all on one timeline with the executor's nodes. The timeline must show:
//   - every collective as exactly record compute F → wait comm F → all_reduce → record comm J →
//     wait compute J, on the queues of its own group;
//   - each tp_reduce / tp_all_reduce node's all-reduce of exactly its output, issued after the node
//     that wrote its input and before the next node; the vocabulary-parallel cross-entropy's two
//     (row maxima: max over N rows; exp-sums and target logits: sum over 2N) inside its node; the
//     norm's one fp64 after backward, over the model group;
//   - as many collectives as the graph implies (its tp nodes counted from the graph);
//   - no host wait anywhere from the first forward node to the optimizer;
// and the loss, the gradients and the norm bitwise equal to the plain CPU TP2 runner's step.
// ferry-mpi-ranks: 2
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "engine/autodiff.h"
#include "engine/executor.h"
#include "engine/graph_dtype.h"
#include "engine/model/gpt.h"
#include "engine/optim/adamw.h"
#include "parallel/device_collectives.h"
#include "parallel/step_factory.h"
#include "tests/parallel/host_wait_backend.h"
#include "tests/parallel/mpi_world.h"

namespace ferry {
namespace {

using parallel::Communicator;
using parallel::DType;
using parallel::ReduceOp;
using test::mpi_world;

constexpr int kB = 2, kT = 16;

struct Entry {
  enum Kind { node, norm, record, wait, all_reduce, host_wait, optimizer } kind;
  Queue queue = Queue::compute;
  int index = -1;      // node or event
  std::string group;   // the queues' or communicator's group; a host wait's description
  const void* ptr = nullptr;
  size_t count = 0;
  DType type = DType::f32;
  ReduceOp op = ReduceOp::sum;
};

using Timeline = std::vector<Entry>;

// A group's queues as the CUDA runner has them (stream queues), recorded.
class RecordingQueues final : public StepQueues {
 public:
  RecordingQueues(Timeline& t, std::string group) : t_(t), group_(std::move(group)) {}
  void record(Queue q, int e) override { t_.push_back({Entry::record, q, e, group_}); }
  void wait(Queue q, int e) override { t_.push_back({Entry::wait, q, e, group_}); }

 private:
  Timeline& t_;
  std::string group_;
};

// A real communicator of the world, seen as a device one (NCCL-like): the device path is taken,
// the sums are the real ones. Only all-reduce is expected inside the step.
class RecordingCommunicator final : public Communicator {
 public:
  RecordingCommunicator(Timeline& t, std::string group, Communicator& real)
      : t_(t), group_(std::move(group)), real_(real) {}
  int rank() const override { return real_.rank(); }
  int size() const override { return real_.size(); }
  bool buffers_on_device() const override { return true; }
  std::string backend_name() const override { return "recording"; }
  void synchronize() override { t_.push_back({Entry::host_wait, Queue::comm, -1, group_ + " communicator synchronize"}); }
  void all_reduce(void* data, size_t count, DType type, ReduceOp op) override {
    t_.push_back({Entry::all_reduce, Queue::comm, -1, group_, data, count, type, op});
    real_.all_reduce(data, count, type, op);
  }
  void reduce_scatter(const void*, void*, size_t, DType, ReduceOp) override { unexpected("reduce_scatter"); }
  void all_gather(const void*, void*, size_t, DType) override { unexpected("all_gather"); }
  void broadcast(void*, size_t, DType, int) override { unexpected("broadcast"); }
  void send(const void*, size_t, DType, int) override { unexpected("send"); }
  void recv(void*, size_t, DType, int) override { unexpected("recv"); }
  void send_recv(const void*, size_t, int, void*, size_t, int, DType) override { unexpected("send_recv"); }
  void barrier() override { t_.push_back({Entry::host_wait, Queue::comm, -1, group_ + " communicator barrier"}); }
  std::unique_ptr<Communicator> split(int, int) override {
    unexpected("split");
    return nullptr;
  }

 private:
  void unexpected(const char* what) { ADD_FAILURE() << what << " issued inside a TP step"; }
  Timeline& t_;
  std::string group_;
  Communicator& real_;
};

GptConfig tiny() {
  GptConfig c;
  c.preset = "tp-schedule-test";
  c.n_layer = 2;
  c.n_head = 4;
  c.n_embd = 32;
  c.vocab_size = 60;  // not a multiple of the shard alignment: the last shard ends in padding
  c.max_seq_len = kT;
  return c;
}

AdamWConfig adamw() { return AdamWConfig{}; }

// The single-process graph at the per-rank shape, as make_gpt_runner builds it on the CPU (one
// micro-batch, one DP rank: loss scale 1).
GptGraph full_graph() {
  GptBuildOptions o;
  o.batch = kB;
  o.seq_len = kT;
  o.loss_scale = 1.0f;
  return build_gpt(tiny(), o);
}

Batch batch(const GptGraph& full) {
  std::mt19937 rng(7);
  std::vector<int32_t> tokens(kB * kT), targets(kB * kT);
  for (auto& x : tokens) x = static_cast<int32_t>(rng() % 60);
  for (auto& y : targets) y = static_cast<int32_t>(rng() % 60);
  Batch b;
  b.inputs.emplace_back(full.tokens, tokens);
  b.inputs.emplace_back(full.targets, targets);
  return b;
}

std::vector<float> initial_parameters() {
  const GptGraph g = full_graph();
  std::vector<double> init;
  init_gpt_params(g.graph, tiny(), 20240611, init);
  return {init.begin(), init.end()};
}

size_t find(const Timeline& t, size_t from, const std::function<bool(const Entry&)>& match) {
  for (size_t i = from; i < t.size(); ++i)
    if (match(t[i])) return i;
  return t.size();
}

std::string describe(const Entry& e) {
  static const char* const kinds[] = {"node", "norm", "record", "wait", "all_reduce", "host wait", "optimizer"};
  return std::string(kinds[e.kind]) + " " + queue_name(e.queue) + " " + std::to_string(e.index) + " " + e.group +
         " count " + std::to_string(e.count);
}

TEST(TpSchedule, CollectivesOnACudaBackendAreIssuedInACapturableOrder) {
  ASSERT_EQ(mpi_world().size(), 2) << "a TP2 test";
  const GptGraph full = full_graph();
  const Batch b = batch(full);

  // The plain CPU TP2 step: the reference for the loss, the gradients and the norm.
  auto cpu = make_cpu_backend();
  parallel::ParallelLayout layout;
  layout.tp = 2;
  auto runner = parallel::make_gpt_runner(tiny(), kB, kT, 1, adamw(), layout, mpi_world(), *cpu);
  runner->set_parameters(initial_parameters());
  const size_t n = static_cast<size_t>(runner->graph().storage_size());
  const float* ref_params = runner->executor().params().as<float>();
  const std::vector<float> params(ref_params, ref_params + n);
  const StepResult want = runner->train({b}, 1e-3f);
  const float* ref_grads = runner->executor().grads().as<float>();
  const std::vector<float> want_grads(ref_grads, ref_grads + n);

  // The same rank graph, its TP group registered with a recording communicator and queues.
  Timeline t;
  test::HostWaitBackend backend([&t](const std::string& what, const void* ptr, size_t bytes) {
    t.push_back({Entry::host_wait, Queue::compute, -1, what, ptr, bytes});
  });
  auto comms = std::make_unique<parallel::RunnerComms>(mpi_world(), parallel::RankGrid::from_tp_pp(2, 1, 2));
  RecordingCommunicator tp(t, "tp", *comms->comms.tp), model(t, "model", *comms->comms.model);
  comms->tp_group = std::make_unique<parallel::GroupRegistration>(tp, std::make_unique<RecordingQueues>(t, "tp"));
  RecordingQueues norm_queues(t, "model");
  parallel::RankGraph r = parallel::prepare_rank_graph(full.graph, tiny(), *comms, false);
  Graph& g = r.graph;
  retype_for_device(g, backend.device());
  derive_backward(g);
  ASSERT_EQ(static_cast<size_t>(g.storage_size()), n) << "not the runner's rank graph";
  Executor ex(g, backend);
  std::memcpy(ex.params().data, params.data(), n * sizeof(float));
  for (const auto& [value, data] : b.inputs)
    ex.set_input(r.input_map.at(value), data.data(), data.size() * sizeof(int32_t));
  std::vector<bool> owned;
  for (const auto& o : r.origins) owned.push_back(o.owner);
  const AdamW counted(adamw_table(g, r.n_model_params, owned, {0, params_storage_end(g, r.n_model_params)}, adamw()),
                      adamw());

  // The device step's body.
  t.clear();
  ex.zero_grads();
  ex.set_after_node([&](int node) { t.push_back({Entry::node, Queue::compute, node}); });
  ex.forward(true);
  ex.backward();
  ex.set_after_node({});
  t.push_back({Entry::norm});
  double sum_squares = counted.norm_squared(ex.grads().as<float>());
  parallel::issue_all_reduce(backend, norm_queues, model, &sum_squares, 1, DType::f64, ReduceOp::sum);
  t.push_back({Entry::optimizer});
  const size_t optimizer = t.size() - 1;
  const double loss = ex.read_scalar(g.loss);

  // No host wait from the first forward node to the optimizer.
  const size_t first = find(t, 0, [](const Entry& e) { return e.kind == Entry::node && e.index == 0; });
  ASSERT_LT(first, t.size()) << "the first forward node never ran";
  for (size_t i = first; i < optimizer; ++i) EXPECT_NE(t[i].kind, Entry::host_wait) << "host wait: " << t[i].group;

  // Every collective is fork → all-reduce → join on its own group's queues.
  std::vector<size_t> reduces;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i].kind != Entry::all_reduce) continue;
    reduces.push_back(i);
    SCOPED_TRACE("collective at " + std::to_string(i) + ": " + describe(t[i]));
    ASSERT_GE(i, 2u);
    ASSERT_LT(i + 2, t.size());
    const Entry want_around[4] = {{Entry::record, Queue::compute, kCollectiveFork, t[i].group},
                                  {Entry::wait, Queue::comm, kCollectiveFork, t[i].group},
                                  {Entry::record, Queue::comm, kCollectiveJoin, t[i].group},
                                  {Entry::wait, Queue::compute, kCollectiveJoin, t[i].group}};
    const size_t at[4] = {i - 2, i - 1, i + 1, i + 2};
    for (int k = 0; k < 4; ++k) {
      const Entry& got = t[at[k]];
      EXPECT_TRUE(got.kind == want_around[k].kind && got.queue == want_around[k].queue &&
                  got.index == want_around[k].index && got.group == want_around[k].group)
          << "want " << describe(want_around[k]) << ", got " << describe(got);
    }
  }

  // Where each node ran on the timeline; a node's kernel issues its collectives after the
  // previous node's entry and before its own.
  std::vector<size_t> ran(g.nodes.size(), t.size());
  for (size_t i = 0; i < t.size(); ++i)
    if (t[i].kind == Entry::node) ran[static_cast<size_t>(t[i].index)] = i;
  for (size_t i = 0; i < g.nodes.size(); ++i) ASSERT_LT(ran[i], t.size()) << "node " << i << " never ran";
  auto inside = [&](size_t node) {
    std::vector<size_t> in;
    const size_t begin = node == 0 ? first : ran[node - 1];
    for (size_t i : reduces)
      if (i > begin && i < ran[node]) in.push_back(i);
    return in;
  };
  // The last node before `node` that writes value `v` (its producer, or the last accumulation into it).
  auto writer = [&](size_t node, int v) {
    for (size_t j = node; j-- > 0;)
      for (int o : g.nodes[j].out)
        if (o == v) return ran[j];
    return size_t{0};  // an input or a parameter: written before the step
  };

  size_t expected = 0, tp_nodes = 0, cross_entropies = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& node = g.nodes[i];
    SCOPED_TRACE("node " + std::to_string(i) + " " + node.op);
    const std::vector<size_t> in = inside(i);
    if (node.op == "tp_reduce" || node.op == "tp_all_reduce") {
      ++expected;
      ++tp_nodes;
      ASSERT_EQ(in.size(), 1u);
      const Entry& e = t[in[0]];
      const Tensor out = ex.tensor(node.out[0]);
      EXPECT_EQ(e.group, "tp");
      EXPECT_EQ(e.ptr, out.data) << "not the node's buffer";
      EXPECT_EQ(e.count, static_cast<size_t>(out.numel()));
      EXPECT_EQ(e.type, DType::f32);
      EXPECT_EQ(e.op, ReduceOp::sum);
      EXPECT_GT(in[0] - 2, writer(i, node.in[0])) << "forked before the node that wrote its input";
    } else if (node.op == "vocab_parallel_cross_entropy") {
      expected += 2;
      ++cross_entropies;
      ASSERT_EQ(in.size(), 2u);
      const size_t rows = static_cast<size_t>(numel(g.values[node.in[1]].shape));
      EXPECT_EQ(t[in[0]].group, "tp");
      EXPECT_EQ(t[in[0]].count, rows);
      EXPECT_EQ(t[in[0]].op, ReduceOp::max);
      EXPECT_EQ(t[in[1]].group, "tp");
      EXPECT_EQ(t[in[1]].count, 2 * rows);
      EXPECT_EQ(t[in[1]].op, ReduceOp::sum);
      EXPECT_GT(in[0] - 2, writer(i, node.in[0])) << "forked before the logits were written";
    } else {
      EXPECT_TRUE(in.empty()) << in.size() << " collectives issued by a node that has none";
    }
  }
  // The norm: one fp64 sum over the model group, after backward, before the optimizer.
  ++expected;
  const size_t norm = find(t, 0, [](const Entry& e) { return e.kind == Entry::norm; });
  ASSERT_FALSE(reduces.empty());
  EXPECT_GT(reduces.back(), norm);
  EXPECT_LT(reduces.back(), optimizer);
  EXPECT_EQ(t[reduces.back()].group, "model");
  EXPECT_EQ(t[reduces.back()].ptr, &sum_squares);
  EXPECT_EQ(t[reduces.back()].count, 1u);
  EXPECT_EQ(t[reduces.back()].type, DType::f64);
  // Forward and backward of every layer's attention and MLP, the embedding's backward input.
  EXPECT_GE(tp_nodes, static_cast<size_t>(4 * tiny().n_layer)) << "too few TP collectives for the check to mean much";
  EXPECT_EQ(cross_entropies, 1u);
  EXPECT_EQ(reduces.size(), expected);

  // The results are the plain TP2 step's, bitwise.
  EXPECT_EQ(loss, want.loss);
  EXPECT_EQ(std::sqrt(sum_squares), want.grad_norm);
  const float* grads = ex.grads().as<float>();
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(grads[i], want_grads[i]) << "gradient element " << i;
}

}  // namespace
}  // namespace ferry
