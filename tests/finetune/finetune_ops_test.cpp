// tests/finetune/finetune_ops_test.cpp — the fine-tuning ops and graphs against finite differences
// in fp64: pooling (first, last, mean over ragged lengths), scale, LoRA adapters inside a padded
// bidirectional trunk, both classification heads, and the multi-task sum of weighted losses.
#include <gtest/gtest.h>

#include "engine/backend.h"
#include "base/error.h"
#include "engine/executor.h"
#include "engine/model/heads.h"
#include "tests/support/gradcheck.h"
#include "tests/support/support.h"

namespace ferry {
namespace {

constexpr double kTol = 1e-6;

void expect_close(const test::GradcheckReport& r) {
  EXPECT_GT(r.checked, 0);
  EXPECT_LT(r.max_rel_error, kTol) << r.worst << " (seed " << test::test_seed() << ")";
}

test::GradcheckInputs dot_loss_over(Graph& g, int out, std::mt19937_64& rng) {
  test::register_dot_loss();
  test::GradcheckInputs in;
  const int w = g.add_input("w", g.values[out].shape, DType::F64);
  in.f64[w] = test::random_vector<double>(static_cast<size_t>(numel(g.values[out].shape)), rng);
  g.loss = g.add("dot_loss", {out, w})[0];
  g.mark_output(g.loss);
  return in;
}

class PoolingGradcheck : public ::testing::TestWithParam<int> {};

TEST_P(PoolingGradcheck, MatchesFiniteDifferences) {
  std::mt19937_64 rng(test::test_seed());
  Graph g;
  const int x = g.add_param("x", {3, 5, 4}, DType::F64, false, -1);
  const int len = g.add_input("lengths", {3}, DType::I32);
  const int y = g.add("pool_tokens", {x, len}, {{"mode", double(GetParam())}})[0];
  auto in = dot_loss_over(g, y, rng);
  in.i32[len] = {5, 2, 1};  // full, ragged, a single token
  expect_close(test::gradcheck(g, in, rng()));
}

INSTANTIATE_TEST_SUITE_P(Modes, PoolingGradcheck, ::testing::Values(0, 1, 2));

TEST(FinetuneOps, PoolingReadsOnlyRealTokens) {
  // Values at padded positions must not reach the pooled vector (last and mean modes).
  Graph g;
  const int x = g.add_input("x", {1, 4, 2}, DType::F64);
  const int len = g.add_input("lengths", {1}, DType::I32);
  const int last = g.add("pool_tokens", {x, len}, {{"mode", 1}})[0];
  const int mean = g.add("pool_tokens", {x, len}, {{"mode", 2}})[0];
  g.mark_output(last);
  g.mark_output(mean);
  auto backend = make_backend("cpu");
  Executor ex(g, *backend);
  std::vector<double> data = {1, 2, 3, 4, 1e9, 1e9, -1e9, 7};
  std::vector<int32_t> n = {2};
  ex.set_input(x, data.data(), data.size() * sizeof(double));
  ex.set_input(len, n.data(), sizeof(int32_t));
  ex.forward(false);
  double l[2], m[2];
  ex.read(last, l, sizeof l);
  ex.read(mean, m, sizeof m);
  EXPECT_EQ(l[0], 3);
  EXPECT_EQ(l[1], 4);
  EXPECT_EQ(m[0], 2);
  EXPECT_EQ(m[1], 3);
}

TEST(FinetuneOps, ScaleGradcheck) {
  std::mt19937_64 rng(test::test_seed());
  Graph g;
  const int x = g.add_param("x", {2, 7}, DType::F64, false, -1);
  const int y = g.add("scale", {x}, {{"s", -2.5}})[0];
  auto in = dot_loss_over(g, y, rng);
  expect_close(test::gradcheck(g, in, rng()));
}

// A padded encoder with LoRA adapters and a classifier head: every trainable parameter (trunk,
// adapters, head) against finite differences.
TEST(FinetuneOps, EncoderWithLoraAndClassifierHead) {
  std::mt19937_64 rng(test::test_seed());
  GptConfig c = model_preset("encoder-nano");
  c.n_layer = 2;
  TrunkOptions o;
  o.batch = 2;
  o.seq_len = 5;
  o.dtype = DType::F64;
  o.lora.rank = 2;
  o.lora.alpha = 3;
  HeadSpec h{"sentiment", HeadKind::SequenceClassification, 3, Pooling::Mean};
  TaskGraph t = build_task_graph(c, h, o);
  // Random parameters everywhere (LoRA B non-zero, so the adapter path has gradient both ways).
  test::GradcheckInputs in;
  in.i32[t.trunk.tokens] = {1, 5, 9, 3, 0, 2, 2, 7, 0, 0};
  in.i32[t.trunk.lengths] = {4, 3};
  in.i32[t.labels] = {2, 0};
  const auto r = test::gradcheck(t.graph, in, rng(), 6);
  expect_close(r);
}

TEST(FinetuneOps, CausalTaggerHead) {
  std::mt19937_64 rng(test::test_seed());
  GptConfig c = model_preset("nano");
  TrunkOptions o;
  o.batch = 2;
  o.seq_len = 4;
  o.dtype = DType::F64;
  HeadSpec h{"ner", HeadKind::TokenClassification, 5, Pooling::Last};
  TaskGraph t = build_task_graph(c, h, o);
  test::GradcheckInputs in;
  in.i32[t.trunk.tokens] = {1, 5, 9, 3, 2, 2, 7, 0};
  in.i32[t.trunk.lengths] = {4, 3};
  in.i32[t.labels] = {0, -1, 4, 1, 3, 2, -1, -1};
  expect_close(test::gradcheck(t.graph, in, rng(), 6));
}

// Multi-task: a classifier and a tagger on one padded encoder, rows split between the tasks, losses
// weighted 0.7 / 1.9 and summed by sum_losses: the loss's value and every gradient (trunk and both
// heads) against finite differences of that weighted sum.
TEST(FinetuneOps, MultiTaskWeightedLossesOnOneTrunk) {
  std::mt19937_64 rng(test::test_seed());
  GptConfig c = model_preset("encoder-nano");
  TrunkOptions o;
  o.batch = 3;
  o.seq_len = 4;
  o.dtype = DType::F64;
  MultiTaskGraph m = build_multitask_graph(c,
                                           {{"sentiment", HeadKind::SequenceClassification, 2, Pooling::Mean},
                                            {"ner", HeadKind::TokenClassification, 3, Pooling::Mean}},
                                           {0.7f, 1.9f}, o);
  test::GradcheckInputs in;
  in.i32[m.trunk.tokens] = {1, 5, 9, 3, 2, 2, 7, 0, 4, 8, 0, 0};
  in.i32[m.trunk.lengths] = {4, 3, 2};
  in.i32[m.labels[0]] = {1, -1, 0};                          // rows 0 and 2: sentiment
  in.i32[m.labels[1]] = {-1, -1, -1, -1, 2, 0, 1, -1, -1, -1, -1, -1};  // row 1: tagged
  expect_close(test::gradcheck(m.graph, in, rng(), 6));
  EXPECT_THROW(build_multitask_graph(c, {{"a", HeadKind::SequenceClassification, 2, Pooling::Mean}}, {1.0f}, o),
               UserError);
  EXPECT_THROW(build_multitask_graph(c,
                                     {{"a", HeadKind::SequenceClassification, 2, Pooling::Mean},
                                      {"b", HeadKind::SequenceClassification, 2, Pooling::Mean}},
                                     {1.0f, 0.0f}, o),
               UserError);
}

}  // namespace
}  // namespace ferry
