// tests/parallel/plan_test.cpp — `ferry plan`'s figures follow from the planner and the layout:
// parameters split by tp·pp, ZeRO-1 divides AdamW's state by dp, 1F1B keeps fewer micro-batches
// in flight on later stages, recompute lowers activations, and a layout that does not match the
// cluster or the model is refused with the flag named.
#include <gtest/gtest.h>

#include "base/error.h"
#include "engine/model/gpt.h"
#include "parallel/plan.h"
#include "tests/support/support.h"

using namespace ferry;
using namespace ferry::parallel;

namespace {

PlanRequest request(const char* model, int tp, int pp, int dp, int nodes) {
  PlanRequest r;
  r.model = gpt_preset(model);
  r.tp = tp;
  r.pp = pp;
  r.dp = dp;
  r.cluster.nodes = nodes;
  r.cluster.gpus_per_node = 8;
  r.micro_batch = 2;
  r.grad_accum = 8;
  return r;
}

double model_bytes(const Plan& p) {
  double sum = 0;
  for (const auto& s : p.stages) sum += s.params;
  return sum;
}

}  // namespace

TEST(Plan, ParametersSplitOverTensorAndPipelineRanks) {
  const Plan one = plan_layout(request("gpt2-124m", 1, 1, 8, 1));
  // bf16, the whole model on each rank, with the vocabulary's padding rows (50257 → 50304).
  const int64_t C = gpt_preset("gpt2-124m").n_embd;
  EXPECT_EQ(one.vocab_padded, 50304);
  EXPECT_NEAR(one.stages[0].params, 2.0 * (one.params_total + (50304 - 50257) * C), 1.0);
  const Plan split = plan_layout(request("gpt2-124m", 2, 2, 2, 1));
  ASSERT_EQ(split.stages.size(), 2u);
  // Two TP ranks hold the model once, except that the tied embedding (padded vocabulary) sits on
  // both the first and the last stage, and TP rank 0 alone holds wpe and the row-parallel biases.
  const GptConfig c = gpt_preset("gpt2-124m");
  const double expected = 2.0 * (double(one.params_total) + double(split.vocab_padded) * c.n_embd);
  EXPECT_NEAR(model_bytes(split) * 2, expected, 0.03 * expected);
}

TEST(Plan, Zero1DividesOptimizerStateByDp) {
  auto r = request("gpt2-350m", 1, 1, 8, 1);
  const Plan plain = plan_layout(r);
  r.zero1 = true;
  const Plan zero = plan_layout(r);
  EXPECT_NEAR(zero.stages[0].optimizer * 8, plain.stages[0].optimizer, 1.0);
  EXPECT_EQ(zero.stages[0].params, plain.stages[0].params);
}

TEST(Plan, OneFOneBKeepsFewerMicroBatchesOnLaterStagesAndRecomputeSaves) {
  const Plan p = plan_layout(request("gpt2-350m", 2, 4, 1, 1));
  ASSERT_EQ(p.stages.size(), 4u);
  for (int s = 0; s < 4; ++s) {
    EXPECT_EQ(p.stages[s].in_flight, 4 - s);
    EXPECT_GT(p.stages[s].arena, 0);
    EXPECT_LT(p.stages[s].activations_recompute, p.stages[s].activations);
  }
  EXPECT_EQ(p.worst_stage, 0);
  EXPECT_GT(p.bubble_s, 0);
  EXPECT_NEAR(p.bubble_s / (p.step_s - p.dp_exposed_s - p.tie_s - p.optimizer_s), 3.0 / (8 + 3), 1e-9);
}

TEST(Plan, RefusesLayoutsThatDoNotFit) {
  EXPECT_THROW(plan_layout(request("gpt2-124m", 2, 1, 2, 1)), UserError);     // 4 ranks on 8 GPUs
  EXPECT_THROW(plan_layout(request("gpt2-1558m", 8, 1, 1, 1)), UserError);    // 25 heads over 8
  EXPECT_THROW(plan_layout(request("gpt2-124m", 1, 16, 1, 2)), UserError);    // 12 layers, 16 stages
}

TEST(Plan, CommandPrintsTheGpt3Example) {
  const auto r = test::run_command(test::ferry_binary() +
                                   " plan --model gpt3-175b --tp 8 --pp 8 --dp 8 --nodes 64 --gpus-per-node 8 "
                                   "--gpu-mem 80 --micro-batch 1 --grad-accum 64 --zero1 --recompute");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("fits in 80 GiB: yes"), std::string::npos) << r.out;
  // Eight vocabulary shards of ⌈50257/8⌉ rounded up to 8 rows (parallel/tensor_parallel.h).
  EXPECT_NE(r.out.find("padded to 50304"), std::string::npos) << r.out;
  const auto bad = test::run_command(test::ferry_binary() + " plan --model gpt2-1558m --tp 8 --pp 2 --dp 4 --nodes 8");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.out.find("n_head (25)"), std::string::npos) << bad.out;
}
