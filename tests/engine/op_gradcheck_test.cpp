// tests/engine/op_gradcheck_test.cpp — every op's backward rule and CPU kernel against central
// finite differences, in fp64, on small random shapes (ragged on purpose).
#include <gtest/gtest.h>

#include "tests/support/gradcheck.h"
#include "tests/support/support.h"

namespace ferry {
namespace {

constexpr double kTol = 1e-6;

std::vector<double> randoms(size_t n, std::mt19937_64& rng) { return test::random_vector<double>(n, rng); }

// Adds a dot_loss over the given outputs with fresh random weights; returns the inputs to feed.
test::GradcheckInputs finish_with_dot_loss(Graph& g, const std::vector<int>& outs, std::mt19937_64& rng) {
  test::register_dot_loss();
  test::GradcheckInputs in;
  std::vector<int> args;
  for (int o : outs) {
    const int w = g.add_input("w" + std::to_string(o), g.values[o].shape, DType::F64);
    in.f64[w] = randoms(static_cast<size_t>(numel(g.values[o].shape)), rng);
    args.push_back(o);
    args.push_back(w);
  }
  g.loss = g.add("dot_loss", args)[0];
  g.mark_output(g.loss);
  return in;
}

void expect_close(const test::GradcheckReport& r) {
  EXPECT_GT(r.checked, 0);
  EXPECT_LT(r.max_rel_error, kTol) << r.worst << " (seed " << test::test_seed() << ")";
}

TEST(OpGradcheck, MatmulWithBias) {
  std::mt19937_64 rng(test::test_seed());
  Graph g;
  const int x = g.add_param("x", {3, 5, 7}, DType::F64, false, -1);
  const int w = g.add_param("w", {6, 7}, DType::F64, true, -1);
  const int b = g.add_param("b", {6}, DType::F64, false, -1);
  const int y = g.add("matmul", {x, w, b})[0];
  auto in = finish_with_dot_loss(g, {y}, rng);
  expect_close(test::gradcheck(g, in, rng()));
}

TEST(OpGradcheck, MatmulWithoutBias) {
  std::mt19937_64 rng(test::test_seed());
  Graph g;
  const int x = g.add_param("x", {4, 9}, DType::F64, false, -1);
  const int w = g.add_param("w", {3, 9}, DType::F64, true, -1);
  const int y = g.add("matmul", {x, w})[0];
  auto in = finish_with_dot_loss(g, {y}, rng);
  expect_close(test::gradcheck(g, in, rng()));
}

TEST(OpGradcheck, Layernorm) {
  std::mt19937_64 rng(test::test_seed());
  Graph g;
  const int x = g.add_param("x", {5, 11}, DType::F64, false, -1);
  const int w = g.add_param("ln.weight", {11}, DType::F64, false, -1);
  const int b = g.add_param("ln.bias", {11}, DType::F64, false, -1);
  const int y = g.add("layernorm", {x, w, b})[0];
  auto in = finish_with_dot_loss(g, {y}, rng);
  expect_close(test::gradcheck(g, in, rng()));
}

TEST(OpGradcheck, ResidualLayernormBothOutputs) {
  std::mt19937_64 rng(test::test_seed());
  Graph g;
  const int a = g.add_param("a", {2, 3, 8}, DType::F64, false, -1);
  const int r = g.add_param("r", {2, 3, 8}, DType::F64, false, -1);
  const int w = g.add_param("ln.weight", {8}, DType::F64, false, -1);
  const int b = g.add_param("ln.bias", {8}, DType::F64, false, -1);
  auto o = g.add("residual_layernorm", {a, r, w, b});
  auto in = finish_with_dot_loss(g, {o[0], o[1]}, rng);
  expect_close(test::gradcheck(g, in, rng()));
}

TEST(OpGradcheck, Gelu) {
  std::mt19937_64 rng(test::test_seed());
  Graph g;
  const int x = g.add_param("x", {37}, DType::F64, false, -1);
  const int y = g.add("gelu", {x})[0];
  auto in = finish_with_dot_loss(g, {y}, rng);
  expect_close(test::gradcheck(g, in, rng()));
}

TEST(OpGradcheck, AddSumsBothOperands) {
  std::mt19937_64 rng(test::test_seed());
  Graph g;
  const int a = g.add_param("a", {13}, DType::F64, false, -1);
  const int b = g.add_param("b", {13}, DType::F64, false, -1);
  const int s = g.add("add", {a, b})[0];
  const int y = g.add("gelu", {s})[0];
  // s is also consumed twice (gelu and the loss): autodiff must sum both contributions.
  auto in = finish_with_dot_loss(g, {y, s}, rng);
  expect_close(test::gradcheck(g, in, rng()));
}

TEST(OpGradcheck, EmbeddingWithRepeatedTokens) {
  std::mt19937_64 rng(test::test_seed());
  Graph g;
  const int tok = g.add_input("tokens", {2, 5}, DType::I32);
  const int wte = g.add_param("wte", {7, 6}, DType::F64, true, -1);
  const int wpe = g.add_param("wpe", {9, 6}, DType::F64, true, -1);
  const int y = g.add("embedding", {tok, wte, wpe})[0];
  auto in = finish_with_dot_loss(g, {y}, rng);
  in.i32[tok] = {1, 3, 3, 0, 6, 3, 1, 1, 5, 2};
  expect_close(test::gradcheck(g, in, rng()));
}

struct AttentionCase {
  int B, T, NH, HS;
  bool causal;
  bool padded;
};

class AttentionGradcheck : public ::testing::TestWithParam<AttentionCase> {};

TEST_P(AttentionGradcheck, MatchesFiniteDifferences) {
  const AttentionCase c = GetParam();
  std::mt19937_64 rng(test::test_seed());
  Graph g;
  const int qkv = g.add_param("qkv", {c.B, c.T, 3 * c.NH * c.HS}, DType::F64, false, -1);
  int lengths = -1;
  if (c.padded) lengths = g.add_input("key_lengths", {c.B}, DType::I32);
  auto o = g.add("attention", {qkv, lengths}, {{"n_head", c.NH}, {"causal", c.causal ? 1 : 0}});
  auto in = finish_with_dot_loss(g, {o[0]}, rng);
  if (c.padded) {
    std::vector<int32_t> len(c.B);
    for (int b = 0; b < c.B; ++b) len[b] = 1 + static_cast<int32_t>(rng() % c.T);
    in.i32[lengths] = len;
  }
  expect_close(test::gradcheck(g, in, rng()));
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionGradcheck,
                         ::testing::Values(AttentionCase{2, 5, 2, 3, true, false},
                                           AttentionCase{1, 7, 3, 2, false, false},
                                           AttentionCase{3, 6, 2, 4, true, true},
                                           AttentionCase{2, 4, 1, 5, false, true}));

TEST(OpGradcheck, CrossEntropyWithIgnoredRowsAndScale) {
  std::mt19937_64 rng(test::test_seed());
  Graph g;
  const int logits = g.add_param("logits", {2, 4, 9}, DType::F64, false, -1);
  const int targets = g.add_input("targets", {2, 4}, DType::I32);
  auto o = g.add("cross_entropy", {logits, targets}, {{"scale", 0.25}, {"ignore_index", -1}});
  g.loss = o[1];
  g.mark_output(g.loss);
  test::GradcheckInputs in;
  in.i32[targets] = {0, 8, -1, 3, 4, -1, 7, 2};
  expect_close(test::gradcheck(g, in, rng(), 0, /*grad_scale=*/0.25));
}

// Rows of 16 columns of which the first 9 are classes (a padded vocabulary): every column, padding
// included, against finite differences — the loss does not depend on the padding, and its
// analytic gradient there must be zero too.
TEST(OpGradcheck, CrossEntropyOverAPaddedVocabulary) {
  std::mt19937_64 rng(test::test_seed());
  Graph g;
  const int logits = g.add_param("logits", {2, 4, 16}, DType::F64, false, -1);
  const int targets = g.add_input("targets", {2, 4}, DType::I32);
  auto o = g.add("cross_entropy", {logits, targets}, {{"scale", 0.5}, {"ignore_index", -1}, {"classes", 9}});
  g.loss = o[1];
  g.mark_output(g.loss);
  test::GradcheckInputs in;
  in.i32[targets] = {0, 8, -1, 3, 4, -1, 7, 2};
  expect_close(test::gradcheck(g, in, rng(), 0, /*grad_scale=*/0.5));
}

}  // namespace
}  // namespace ferry
