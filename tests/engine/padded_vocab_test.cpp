// tests/engine/padded_vocab_test.cpp — the vocabulary padded to a multiple of 128 in the graph
// (engine/model/gpt.h: padded_vocab_size), checked on the CPU:
//   - the sizes (GPT-2's 50257 → 50304 as llm.c; 4096 stays; a compact 259+N one rounds up);
//   - the token embedding is [Vp, C] but its logical order (checkpoints, model files, host arrays)
//     holds the real V rows only, so checkpoints keep the real vocabulary;
//   - cross_entropy over rows of Vp columns equals cross_entropy over the V real ones, bit for bit
//     (loss and gradient), and the padding columns get an exactly zero gradient;
//   - in a whole GPT, whatever the padding rows of wte hold, the loss is the same, and after a
//     backward pass their gradient is exactly zero (so AdamW leaves them at zero for ever).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "engine/autodiff.h"
#include "engine/executor.h"
#include "engine/model/gpt.h"
#include "engine/model/heads.h"
#include "tests/support/support.h"

namespace ferry {
namespace {

TEST(PaddedVocabulary, SizesAreMultiplesOf128) {
  EXPECT_EQ(padded_vocab_size(50257), 50304);
  EXPECT_EQ(padded_vocab_size(4096), 4096);
  EXPECT_EQ(padded_vocab_size(259 + 3837), 4096);
  EXPECT_EQ(padded_vocab_size(259 + 1000), 1280);
  EXPECT_EQ(padded_vocab_size(1), 128);
  EXPECT_EQ(padded_vocab_size(256), 256);
}

GptConfig config(int vocab) {
  GptConfig c;
  c.preset = "padded";
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 16;
  c.vocab_size = vocab;
  c.max_seq_len = 8;
  return c;
}

TEST(PaddedVocabulary, TheGraphHoldsPaddedRowsTheLogicalOrderTheRealOnes) {
  for (const bool tied : {true, false}) {
    GptConfig c = config(251);
    c.tied_head = tied;
    GptBuildOptions o;
    o.batch = 2;
    o.seq_len = 5;
    const GptGraph m = build_gpt(c, o);
    const Graph& g = m.graph;
    EXPECT_EQ(g.values[m.logits].shape, (Shape{2, 5, 256}));
    for (const char* name : {"wte", "lm_head.weight"}) {
      const int k = g.param_index(name);
      if (k < 0) continue;
      const ParamInfo& p = g.params[k];
      EXPECT_EQ(g.values[p.value].shape, (Shape{256, 16})) << name;
      EXPECT_EQ(p.padded_rows, 5) << name;
      EXPECT_EQ(p.numel, 251 * 16) << name << ": the logical order (checkpoints) holds the real rows";
      EXPECT_EQ(logical_shape(g, p), (Shape{251, 16})) << name;
      EXPECT_EQ(p.storage_numel, 256 * 16) << name;
    }
    // Parameters follow one another densely in the logical order, whatever the padding.
    int64_t next = 0;
    for (const ParamInfo& p : g.params) {
      EXPECT_EQ(static_cast<int64_t>(p.offset), next) << p.name;
      next += p.numel;
    }
    EXPECT_EQ(g.param_count(), next);
    EXPECT_GE(g.storage_size(), next + 5 * 16);
  }
}

// Cross-entropy of N rows: once over V columns, once over the same values in rows of L > V
// columns whose padding holds values that would dominate the softmax.
TEST(PaddedVocabulary, CrossEntropyOverPaddedRowsEqualsTheUnpaddedOneBitForBit) {
  constexpr int N = 6, V = 251, L = 256;
  std::mt19937_64 rng(test::test_seed());
  const auto real = test::random_vector<double>(size_t(N) * V, rng, -4.0, 4.0);
  std::vector<int32_t> targets = {0, 250, -1, 17, 100, 3};
  auto run = [&](int columns) {
    Graph g;
    const int logits = g.add_input("logits", {N, columns}, DType::F64);
    const int t = g.add_input("targets", {N}, DType::I32);
    auto o = g.add("cross_entropy", {logits, t}, {{"scale", 0.5}, {"ignore_index", -1}, {"classes", V}});
    g.mark_output(o[1]);
    g.mark_output(o[2]);
    auto cpu = make_cpu_backend();
    Executor ex(g, *cpu);
    std::vector<double> x(size_t(N) * columns, 1e6);
    for (int n = 0; n < N; ++n) std::copy_n(real.begin() + n * V, V, x.begin() + n * columns);
    ex.set_input(logits, x.data(), x.size() * sizeof(double));
    ex.set_input(t, targets.data(), targets.size() * sizeof(int32_t));
    ex.forward(true);
    std::vector<double> grad(x.size());
    ex.read(o[2], grad.data(), grad.size() * sizeof(double));
    return std::make_pair(ex.read_scalar(o[1]), grad);
  };
  const auto [loss_v, grad_v] = run(V);
  const auto [loss_l, grad_l] = run(L);
  EXPECT_EQ(loss_l, loss_v);
  EXPECT_TRUE(std::isfinite(loss_l));
  for (int n = 0; n < N; ++n) {
    for (int v = 0; v < V; ++v) ASSERT_EQ(grad_l[size_t(n) * L + v], grad_v[size_t(n) * V + v]) << n << "," << v;
    for (int v = V; v < L; ++v) ASSERT_EQ(grad_l[size_t(n) * L + v], 0.0) << "padding " << n << "," << v;
  }
}

TEST(PaddedVocabulary, PaddingRowsNeitherChangeTheLossNorGetAGradient) {
  for (const bool tied : {true, false}) {
    SCOPED_TRACE(tied ? "tied head" : "untied head");
    GptConfig c = config(251);
    c.tied_head = tied;
    GptBuildOptions o;
    o.batch = 2;
    o.seq_len = 6;
    o.dtype = DType::F64;
    GptGraph m = build_gpt(c, o);
    derive_backward(m.graph);
    const Graph& g = m.graph;
    auto cpu = make_cpu_backend();
    Executor ex(g, *cpu);
    std::vector<double> init;
    init_gpt_params(g, c, 7, init);
    std::vector<float> flat(init.begin(), init.end());
    ex.set_parameters(flat);
    std::mt19937_64 rng(test::test_seed());
    std::uniform_int_distribution<int32_t> tok(0, c.vocab_size - 1);
    std::vector<int32_t> tokens(12), targets(12);
    for (auto& t : tokens) t = tok(rng);
    for (auto& t : targets) t = tok(rng);
    targets[0] = c.vocab_size - 1;  // the last real class
    ex.set_input(m.tokens, tokens.data(), tokens.size() * sizeof(int32_t));
    ex.set_input(m.targets, targets.data(), targets.size() * sizeof(int32_t));
    auto loss_and_grads = [&] {
      ex.zero_grads();
      ex.forward(true);
      ex.backward();
      const double* gr = ex.grads().as<double>();
      return std::make_pair(ex.read_scalar(m.loss), std::vector<double>(gr, gr + g.storage_size()));
    };
    const auto [loss_zero, grads_zero] = loss_and_grads();
    // Fill every padding row with values that would dominate the softmax were they read.
    double* params = ex.params().as<double>();
    for (const ParamInfo& p : g.params)
      for (int64_t i = p.numel; i < p.storage_numel; ++i) params[p.storage + i] = 50.0;
    const auto [loss_big, grads_big] = loss_and_grads();
    EXPECT_EQ(loss_big, loss_zero);
    EXPECT_TRUE(std::isfinite(loss_zero));
    int padded = 0;
    for (const ParamInfo& p : g.params) {
      if (!p.padded_rows) continue;
      ++padded;
      for (int64_t i = p.numel; i < p.storage_numel; ++i) {
        ASSERT_EQ(grads_zero[p.storage + i], 0.0) << p.name << "[" << i << "]";
        ASSERT_EQ(grads_big[p.storage + i], 0.0) << p.name << "[" << i << "]";
      }
      // The real rows did get a gradient (the check is not vacuous).
      double norm = 0;
      for (int64_t i = 0; i < p.numel; ++i) norm += std::abs(grads_zero[p.storage + i]);
      EXPECT_GT(norm, 0.0) << p.name;
    }
    EXPECT_EQ(padded, tied ? 1 : 2);
    for (size_t i = 0; i < grads_zero.size(); ++i) ASSERT_EQ(grads_big[i], grads_zero[i]) << "gradient element " << i;
  }
}

// The masked-LM head of the encoder (a task graph) pads the same way and keeps padding out of its loss.
TEST(PaddedVocabulary, TaskLanguageModelHeadsTellCrossEntropyTheRealVocabulary) {
  HeadSpec lm;
  lm.task = "lm";
  lm.kind = HeadKind::LanguageModel;
  TrunkOptions o;
  o.batch = 2;
  o.seq_len = 5;
  GptConfig c = config(300);
  c.causal = false;
  const TaskGraph t = build_task_graph(c, lm, o);
  EXPECT_EQ(t.graph.values[t.logits].shape.back(), 384);
  int found = 0;
  for (const Node& n : t.graph.nodes)
    if (n.op == "cross_entropy") {
      EXPECT_EQ(n.attrs.i("classes"), 300);
      ++found;
    }
  EXPECT_EQ(found, 1);
}

}  // namespace
}  // namespace ferry
