// tests/engine/gpt_gradcheck_test.cpp — a whole tiny GPT (2 blocks, tied head, every op of the
// model) differentiated by autodiff, against central finite differences in fp64 on sampled elements
// of every parameter tensor.
#include <gtest/gtest.h>

#include "engine/model/gpt.h"
#include "tests/support/gradcheck.h"
#include "tests/support/support.h"

namespace ferry {
namespace {

GptConfig tiny_config(bool tied) {
  GptConfig c;
  c.preset = "gradcheck";
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 8;
  c.vocab_size = 11;
  c.max_seq_len = 6;
  c.tied_head = tied;
  return c;
}

void check_gpt(bool tied) {
  std::mt19937_64 rng(test::test_seed());
  GptBuildOptions o;
  o.batch = 2;
  o.seq_len = 5;
  o.dtype = DType::F64;
  GptGraph m = build_gpt(tiny_config(tied), o);
  test::GradcheckInputs in;
  std::vector<int32_t> tokens(10), targets(10);
  for (int i = 0; i < 10; ++i) {
    tokens[i] = static_cast<int32_t>(rng() % 11);
    targets[i] = static_cast<int32_t>(rng() % 11);
  }
  in.i32[m.tokens] = tokens;
  in.i32[m.targets] = targets;
  const auto r = test::gradcheck(m.graph, in, rng(), /*per_param=*/4);
  EXPECT_GE(r.checked, 4 * static_cast<int>(m.graph.params.size()) - 4);
  EXPECT_LT(r.max_rel_error, 1e-6) << r.worst << " (seed " << test::test_seed() << ")";
}

TEST(GptGradcheck, TiedHeadMatchesFiniteDifferences) { check_gpt(true); }
TEST(GptGradcheck, UntiedHeadMatchesFiniteDifferences) { check_gpt(false); }

}  // namespace
}  // namespace ferry
