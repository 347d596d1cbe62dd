// tests/data/generate_test.cpp — sampling (greedy, temperature, top-k), the generator's sliding
// context, and `ferry generate` on a checkpoint.
#include "engine/generate/sampler.h"

#include <algorithm>
#include <cmath>
#include <fstream>

#include "engine/backend.h"
#include "engine/checkpoint/checkpoint.h"
#include "base/error.h"
#include "tests/support/support.h"

namespace ferry {
namespace {

namespace fs = std::filesystem;

TEST(Sampling, GreedyAndTopOneTakeTheLargestLogit) {
  const std::vector<float> logits = {0.1f, 2.5f, -1.0f, 2.5f, 0.7f};
  Rng rng(1);
  SamplingOptions greedy;
  greedy.temperature = 0;
  EXPECT_EQ(sample_token(logits.data(), 5, greedy, rng), 1);  // ties: lowest id
  SamplingOptions top1;
  top1.top_k = 1;
  for (int i = 0; i < 20; ++i) EXPECT_EQ(sample_token(logits.data(), 5, top1, rng), 1);
}

TEST(Sampling, FrequenciesFollowTheSoftmaxAndTopKCutsTheTail) {
  // Probabilities 1/6, 2/6, 3/6 (log 1, log 2, log 3), then a tail that top-k 3 must never draw.
  const std::vector<float> logits = {0.0f, float(std::log(2.0)), float(std::log(3.0)), -0.5f, -1.0f};
  SamplingOptions o;
  o.top_k = 3;
  Rng rng(2024);
  std::vector<int> count(5, 0);
  const int n = 60000;
  for (int i = 0; i < n; ++i) ++count[sample_token(logits.data(), 5, o, rng)];
  EXPECT_EQ(count[3] + count[4], 0);
  for (int k = 0; k < 3; ++k) EXPECT_NEAR(count[k] / double(n), (k + 1) / 6.0, 0.01) << k;
  // Temperature 2 flattens: p ∝ sqrt(1, 2, 3).
  o.temperature = 2.0f;
  std::fill(count.begin(), count.end(), 0);
  for (int i = 0; i < n; ++i) ++count[sample_token(logits.data(), 5, o, rng)];
  const double z = 1 + std::sqrt(2.0) + std::sqrt(3.0);
  EXPECT_NEAR(count[0] / double(n), 1 / z, 0.01);
  EXPECT_NEAR(count[2] / double(n), std::sqrt(3.0) / z, 0.01);
}

std::vector<float> random_params(const GptConfig& c, uint64_t seed) {
  const auto table = gpt_param_table(c);
  std::vector<float> p(table.back().offset + table.back().numel);
  Rng rng(seed);
  for (float& x : p) x = float(0.5 * rng.normal());
  return p;
}

TEST(Generator, ContextLengthDoesNotChangeGreedyTokensAndWindowSlides) {
  GptConfig c = gpt_preset("nano");
  c.vocab_size = 256;
  c.max_seq_len = 24;
  auto backend = make_cpu_backend();
  const auto params = random_params(c, 5);
  SamplingOptions o;
  o.temperature = 0;
  o.max_new_tokens = 6;
  const std::vector<int32_t> prompt = {10, 20, 30};
  // Positions after the text are padding; the causal model must ignore them: a graph of exactly
  // the needed length and one of the full context give the same greedy tokens.
  Generator full(c, *backend, 24), exact(c, *backend, 9);
  full.set_parameters(params);
  exact.set_parameters(params);
  Rng r1(1), r2(1);
  const auto a = full.generate(prompt, o, r1);
  const auto b = exact.generate(prompt, o, r2);
  EXPECT_EQ(a, b);
  ASSERT_EQ(a.size(), 6u);
  // The prompt's logits: the last row's argmax is the first greedy token; rows agree across contexts.
  const std::vector<float> lf = full.logits(prompt), le = exact.logits(prompt);
  ASSERT_EQ(lf.size(), 3u * 256);
  EXPECT_EQ(lf, le);
  EXPECT_EQ(std::max_element(lf.begin() + 512, lf.end()) - (lf.begin() + 512), a[0]);
  // Longer than the context: the window slides and generation continues.
  o.max_new_tokens = 40;
  Rng r3(1);
  EXPECT_EQ(full.generate(prompt, o, r3).size(), 40u);
  // Same seed, same sampled text.
  o.temperature = 1;
  Rng s1(9), s2(9);
  EXPECT_EQ(full.generate(prompt, o, s1), full.generate(prompt, o, s2));
  EXPECT_THROW(full.generate({}, o, s1), UserError);
  EXPECT_THROW(full.generate({300}, o, s1), UserError);
}

TEST(Generator, CommandLineContinuesAPromptDeterministically) {
  test::TempDir dir;
  Checkpoint ck;
  ck.model = gpt_preset("nano");
  ck.model.vocab_size = 256;
  ck.params = gpt_param_table(ck.model);
  ck.parameters = random_params(ck.model, 3);
  const fs::path file = dir.path() / "m.ckpt";
  write_checkpoint(file, ck);
  const std::string cmd = test::ferry_binary() + " generate --checkpoint " + file.string() +
                          " --prompt 'Ada lived' --max-tokens 12 --seed 5";
  const auto a = test::run_command(cmd), b = test::run_command(cmd);
  ASSERT_EQ(a.exit_code, 0) << a.out;
  EXPECT_EQ(a.out.rfind("Ada lived", 0), 0u) << a.out;
  EXPECT_EQ(a.out, b.out);
  EXPECT_GE(a.out.size(), std::string("Ada lived").size() + 1);
  const auto bad = test::run_command(test::ferry_binary() + " generate --checkpoint " + file.string() +
                                     " --prompt x --max-tokens 0");
  EXPECT_EQ(bad.exit_code, 2) << bad.out;
}

}  // namespace
}  // namespace ferry
