// tests/engine/grad_accum_test.cpp — gradient accumulation is the same optimizer step as one big
// batch: two micro-batches of B rows (the loss node scaled by 1/2) give the loss, gradient norm and
// updated parameters of one batch of 2B rows.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/backend.h"
#include "engine/model/gpt.h"
#include "engine/train/step.h"
#include "tests/support/support.h"
#include "parallel/step_factory.h"

namespace ferry {
namespace {

struct StepOutcome {
  StepResult result;
  std::vector<float> params;
};

StepOutcome one_step(int batch, int micro_batches, const std::vector<int32_t>& tokens, const std::vector<int32_t>& targets,
             const std::vector<float>& init) {
  const int T = 16;
  GptBuildOptions o;
  o.batch = batch;
  o.seq_len = T;
  o.loss_scale = 1.0f / static_cast<float>(micro_batches);
  GptGraph m = build_gpt(gpt_preset("micro"), o);
  auto backend = make_cpu_backend();
  AdamWConfig adamw;
  // Adam turns the sign of a near-zero gradient element into a full ±lr step, so last-bit differences
  // between the two reduction orders could move such an element by 2·lr; an eps above the rounding
  // noise keeps those updates proportional to the gradient, and the comparison meaningful.
  adamw.eps = 1e-5f;
  auto step_runner = ferry::parallel::make_local_runner(std::move(m.graph), *backend, adamw);
  ferry::parallel::Runner& step = *step_runner;
  step.set_parameters(init);
  std::vector<Batch> micro;
  const size_t rows = static_cast<size_t>(batch) * T;
  for (int k = 0; k < micro_batches; ++k) {
    Batch b;
    b.inputs.emplace_back(m.tokens, std::vector<int32_t>(tokens.begin() + k * rows, tokens.begin() + (k + 1) * rows));
    b.inputs.emplace_back(m.targets,
                          std::vector<int32_t>(targets.begin() + k * rows, targets.begin() + (k + 1) * rows));
    micro.push_back(std::move(b));
  }
  StepOutcome r;
  r.result = step.train(micro, 1e-3f);
  r.params = step.parameters();
  return r;
}

TEST(GradAccumulation, TwoMicroBatchesEqualOneBatchOfTwiceTheRows) {
  std::mt19937_64 rng(test::test_seed());
  const int rows = 4 * 16;
  std::vector<int32_t> tokens(rows), targets(rows);
  for (int i = 0; i < rows; ++i) {
    tokens[i] = static_cast<int32_t>(rng() % 256);
    targets[i] = static_cast<int32_t>(rng() % 256);
  }
  GptBuildOptions o;
  o.batch = 4;
  o.seq_len = 16;
  GptGraph layout = build_gpt(gpt_preset("micro"), o);
  std::vector<double> init;
  init_gpt_params(layout.graph, gpt_preset("micro"), rng(), init);
  const std::vector<float> init_f(init.begin(), init.end());

  const StepOutcome whole = one_step(4, 1, tokens, targets, init_f);
  const StepOutcome accum = one_step(2, 2, tokens, targets, init_f);
  EXPECT_NEAR(accum.result.loss, whole.result.loss, 1e-6 * std::abs(whole.result.loss));
  EXPECT_NEAR(accum.result.grad_norm, whole.result.grad_norm, 1e-5 * whole.result.grad_norm);
  ASSERT_EQ(accum.params.size(), whole.params.size());
  double worst = 0;
  size_t moved = 0;
  for (size_t i = 0; i < whole.params.size(); ++i) {
    worst = std::max(worst, double(std::abs(accum.params[i] - whole.params[i])));
    moved += whole.params[i] != init_f[i];
  }
  EXPECT_LT(worst, 1e-6);
  EXPECT_GT(moved, whole.params.size() / 2);  // the step really updated the model
}

}  // namespace
}  // namespace ferry
