// tests/parallel/finetune_layouts_mpi_test.cpp — fine-tuning graphs under data and tensor
// parallelism train exactly like one process with the global batch, through the one runner.
//
// The task graphs `ferry finetune` builds (tests/finetune/finetune_graphs.h: sentiment on a causal
// or bidirectional trunk, NER tagging on an encoder, a frozen lower block with layer-wise rates,
// multi-task sentiment + NER, the causal LM head) run 4 AdamW steps on ragged batches whose
// labelled rows differ from rank to rank (NER leaves every third token and the padding unlabelled;
// multi-task rows alternate between the heads). A DP rank's loss must be its share of the global
// mean — each cross_entropy divides by the global count of labelled rows — or the losses and the
// parameters drift from one process's; that is what the label counts are checked by. Every graph
// (the language models' vocabulary-parallel losses and LoRA adapters included) also runs with TP2
// and with PP2 (and TP2 × DP2, PP2 × DP2 on 4 ranks).
// ferry-mpi-ranks: 2 4
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "engine/model/gpt.h"
#include "parallel/step_factory.h"
#include "tests/finetune/finetune_graphs.h"
#include "tests/parallel/mpi_world.h"

using namespace ferry;
using ferry::test::mpi_world;

namespace {

constexpr int kT = 16, kSteps = 4;
constexpr float kLr = 3e-3f;

AdamWConfig adamw() {
  AdamWConfig c;
  c.eps = 1e-5f;  // as layouts_mpi_test: keeps near-cancelling gradient elements' updates small
  return c;
}

struct Trajectory {
  std::vector<double> losses;
  std::vector<float> params;
};

// The global batch of step s (the same on every rank), from one seed per step.
Batch global_batch(const test::FinetuneCase& fc, const test::BuiltCase& b, int B, int s) {
  std::mt19937_64 rng(1000 + s);
  return test::random_case_batch(fc, b, B, kT, 96, rng);
}

Trajectory train(StepRunner& step, const test::FinetuneCase& fc, const test::BuiltCase& ids, int B) {
  Trajectory t;
  for (int s = 0; s < kSteps; ++s)
    t.losses.push_back(step.train({shard_rows(global_batch(fc, ids, B, s), step.data_shard())}, kLr).loss);
  t.params = step.parameters();
  return t;
}

std::vector<float> initial(const test::BuiltCase& b, const GptConfig& c) {
  std::vector<double> init;
  init_gpt_params(b.graph, c, 424242, init);
  return {init.begin(), init.end()};
}

// Parameters within 2e-6 of one process's after 4 steps under DP (the DP sums regroup float
// additions); TP also splits attention's heads and the row-parallel products into partial sums that
// are all-reduced, and AdamW's normalised update turns those last-bit differences of near-zero
// gradient elements into up to a few 1e-6 of a parameter: 5e-6 there. A rank normalising by its own
// label count instead of the global one is off by 1e-3 and more.
void expect_matches(const Trajectory& got, const Trajectory& want, const std::string& what, double param_tol) {
  ASSERT_EQ(got.losses.size(), want.losses.size());
  for (size_t s = 0; s < got.losses.size(); ++s)
    EXPECT_NEAR(got.losses[s], want.losses[s], 1e-5 * std::fabs(want.losses[s])) << what << " step " << s + 1;
  ASSERT_EQ(got.params.size(), want.params.size());
  double worst = 0;
  for (size_t i = 0; i < got.params.size(); ++i) worst = std::max(worst, std::fabs(double(got.params[i]) - want.params[i]));
  EXPECT_LT(worst, param_tol) << what << ": parameters after " << kSteps << " steps";
  EXPECT_NE(want.losses.front(), want.losses.back()) << what << ": the reference did not move";
}

void check_case(const test::FinetuneCase& fc, parallel::ParallelLayout layout) {
  const int world = mpi_world().size();
  const int dp = world / (layout.tp * layout.pp);
  const int B = 2 * dp;  // two rows per DP rank: row 1 of the global batch is a single token
  const GptConfig c = test::finetune_config(fc.causal);
  auto backend = make_cpu_backend();
  const test::BuiltCase global = test::build_case(fc, c, B, kT);
  const std::vector<float> init = initial(global, c);

  auto one = parallel::make_local_runner(test::build_case(fc, c, B, kT).graph, *backend, adamw());
  one->set_parameters(init);
  const Trajectory want = train(*one, fc, global, B);

  test::BuiltCase rank = test::build_case(fc, c, B / dp, kT);
  auto step = parallel::make_task_runner(std::move(rank.graph), c, adamw(), layout, mpi_world(), *backend);
  step->set_parameters(init);
  const std::string what = fc.name + " tp" + std::to_string(layout.tp) + "×pp" + std::to_string(layout.pp) + "×dp" +
                           std::to_string(dp) + (layout.zero1 ? " zero1" : "");
  expect_matches(train(*step, fc, global, B), want, what, layout.tp > 1 ? 5e-6 : 2e-6);
}

}  // namespace

TEST(FinetuneLayouts, DataParallelEqualsOneProcessForEveryTaskGraph) {
  for (const auto& fc : test::finetune_cases()) {
    if (fc.name == "sentiment_lora") continue;  // below, with ZeRO-1
    check_case(fc, {1, 1, false});
  }
}

TEST(FinetuneLayouts, DataParallelWithZero1AndLoraEqualsOneProcess) {
  for (const auto& fc : test::finetune_cases())
    if (fc.name == "sentiment_lora" || fc.name == "ner_encoder" || fc.name == "lm_masked_encoder")
      check_case(fc, {1, 1, true});
}

// Every task graph, causal and bidirectional: the task heads, the language-model heads (a
// vocabulary-parallel cross-entropy, which under TP × DP divides by the global label count too),
// LoRA adapters split with their matrices (on a causal trunk with a sequence head, and on an
// encoder with a token head below).
// Two pipeline stages (and PP2 × DP2 on 4 ranks): the heads on the last stage, a frozen lower
// block leaving the first stage nothing to train.
TEST(FinetuneLayouts, PipelineEqualsOneProcessForEveryTaskGraph) {
  for (const auto& fc : test::finetune_cases()) check_case(fc, {1, 2, false});
}

TEST(FinetuneLayouts, TensorParallelEqualsOneProcessForEveryTaskGraph) {
  for (const auto& fc : test::finetune_cases()) check_case(fc, {2, 1, false});
  test::FinetuneCase lora{"ner_lora_encoder", false, {}, {}};
  for (const auto& fc : test::finetune_cases())
    if (fc.name == "ner_encoder") lora.heads = fc.heads;
  lora.techniques.lora.rank = 4;
  check_case(lora, {2, 1, false});
}
