// tests/parallel/runner_gpu_mpi_test.cpp — the one runner on the CUDA backend under data
// parallelism with the MPI communicator: two ranks share one GPU (MPI stages the gradients through
// host memory, so no one-rank-per-device rule applies) and train like one process with the global
// batch, within bf16's rounding (the DP sum rounds the gradients to bf16 once more than one process
// does); tensor parallelism over the same two ranks trains like one process too, and so does every
// fine-tuning graph under DP (each rank's losses divided by the global label count, a step input)
// and under TP, and two pipeline stages (the runner's own 1F1B on the executor).
// Labels mpi and gpu: skips (77) on every rank without a device.
// ferry-mpi-ranks: 2
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "base/error.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/device.h"
#include "engine/model/gpt.h"
#include "parallel/step_factory.h"
#include "tests/finetune/finetune_graphs.h"
#include "tests/parallel/mpi_world.h"
#include "tests/parallel/runner_gpu_fixture.h"

using namespace ferry;
using ferry::test::mpi_world;
using namespace ferry::test::runner_gpu;

TEST(RunnerGpu, DataParallelTwoRanksOnOneGpuEqualOneProcess) {
  if (cuda_device_count() == 0) GTEST_SKIP() << device_summary();
  const int dp = mpi_world().size();
  auto gpu = make_cuda_backend();
  auto one = one_process(*gpu, kB * dp);
  const std::vector<StepResult> want = train(*one, 0, kB * dp);
  const std::vector<float> want_params = one->parameters();

  auto step = parallel::make_gpt_runner(tiny(), kB, kT, kMicro, AdamWConfig{}, {}, mpi_world(), *gpu);
  step->set_parameters(initial());
  const std::vector<StepResult> got = train(*step, step->data_shard().rank * kB, kB);
  for (int s = 0; s < kSteps; ++s) EXPECT_NEAR(got[s].loss, want[s].loss, 1e-2 * want[s].loss) << "step " << s + 1;
  EXPECT_LT(want.back().loss, want.front().loss) << "the reference did not train";
  const std::vector<float> params = step->parameters();
  ASSERT_EQ(params.size(), want_params.size());
  double worst = 0;
  for (size_t i = 0; i < params.size(); ++i) worst = std::max(worst, std::fabs(double(params[i]) - want_params[i]));
  EXPECT_LT(worst, 2e-3) << "parameters after " << kSteps << " steps (bf16 gradients, lr 1e-3)";
  // The replicas stay in step: every rank holds the same master weights.
  std::vector<float> sum = params;
  mpi_world().all_reduce(sum.data(), sum.size(), parallel::DType::f32, parallel::ReduceOp::sum);
  for (size_t i = 0; i < sum.size(); i += 97) EXPECT_NEAR(sum[i], dp * params[i], 1e-6 + 1e-6 * std::fabs(sum[i]));
}

// Tensor parallelism on the device: two ranks share the GPU, each holding half of every split
// layer and half of the vocabulary; the TP ops' collectives (the row-parallel sums, the
// vocabulary-parallel cross-entropy's maxima and exp-sums) and the norm's sum go through the MPI
// communicator, staged through pinned host memory (eager steps). Within bf16's rounding (the
// partial sums are rounded to bf16 before they are added) it trains like one process: the same
// losses, the same clipped norm (a replicated parameter counted once, not twice), and
// parameters and moments read back in the single-process order.
TEST(RunnerGpu, TensorParallelTwoRanksOnOneGpuEqualOneProcess) {
  if (cuda_device_count() == 0) GTEST_SKIP() << device_summary();
  auto gpu = make_cuda_backend();
  auto one = one_process(*gpu, kB);
  const std::vector<StepResult> want = train(*one, 0, kB);
  const std::vector<float> want_params = one->parameters();
  const OptimizerState want_state = one->optimizer_state();

  auto step = parallel::make_gpt_runner(tiny(), kB, kT, kMicro, AdamWConfig{}, {2, 1, false}, mpi_world(), *gpu);
  ASSERT_EQ(step->grid().shape().tp, 2);
  step->set_parameters(initial());
  const std::vector<StepResult> got = train(*step, 0, kB);
  for (int s = 0; s < kSteps; ++s) {
    EXPECT_NEAR(got[s].loss, want[s].loss, 1e-2 * want[s].loss) << "step " << s + 1;
    EXPECT_NEAR(got[s].grad_norm, want[s].grad_norm, 2e-2 * want[s].grad_norm) << "step " << s + 1;
  }
  EXPECT_LT(want.back().loss, want.front().loss) << "the reference did not train";
  const std::vector<float> params = step->parameters();
  ASSERT_EQ(params.size(), want_params.size());
  double worst = 0, moved = 0;
  const std::vector<float> start = initial();
  for (size_t i = 0; i < params.size(); ++i) {
    worst = std::max(worst, std::fabs(double(params[i]) - want_params[i]));
    moved = std::max(moved, std::fabs(double(want_params[i]) - start[i]));
  }
  EXPECT_LT(worst, 2e-3) << "parameters after " << kSteps << " steps (bf16 gradients, lr 1e-3)";
  EXPECT_GT(moved, 2e-3) << "the reference's parameters barely moved: the comparison above would prove nothing";
  const OptimizerState state = step->optimizer_state();
  EXPECT_EQ(state.steps, want_state.steps);
  ASSERT_EQ(state.m.size(), want_state.m.size());
  double m_worst = 0, m_scale = 0;
  for (size_t i = 0; i < state.m.size(); ++i) {
    m_worst = std::max(m_worst, std::fabs(double(state.m[i]) - want_state.m[i]));
    m_scale = std::max(m_scale, std::fabs(double(want_state.m[i])));
  }
  EXPECT_LT(m_worst, 0.05 * m_scale) << "first moments in the single-process order";
}

// The fine-tuning task graphs (sentiment on both trunks, NER with unlabelled tokens, frozen blocks,
// multi-task, the LM heads) on ragged batches whose labelled rows differ between the ranks: under
// DP2 on one GPU each rank divides by the global label count, so the losses and parameters follow
// one process with the global batch on the same GPU (a rank dividing by its own count is off by
// far more than bf16's rounding).
// Under TP2 the same graphs split their layers, the LM heads' vocabulary (the vocabulary-parallel
// cross-entropy) and LoRA adapters over the two ranks.
TEST(RunnerGpu, FinetuneGraphsUnderDataOrTensorParallelismOnOneGpuEqualOneProcess) {
  if (cuda_device_count() == 0) GTEST_SKIP() << device_summary();
  auto gpu = make_cuda_backend();
  constexpr int kFtT = 16, kFtSteps = 4;
  for (int tp : {1, 2}) {
    for (const auto& fc : test::finetune_cases()) {
      const int dp = mpi_world().size() / tp;
      const int B = 2 * dp;
      SCOPED_TRACE(fc.name + " tp" + std::to_string(tp));
      const GptConfig c = test::finetune_config(fc.causal);
      const test::BuiltCase global = test::build_case(fc, c, B, kFtT);
      std::vector<double> init64;
      init_gpt_params(global.graph, c, 424242, init64);
      std::vector<float> init(init64.begin(), init64.end());
      init_lora_params(global.graph, 424242, init);
      auto run = [&](StepRunner& step) {
        std::vector<double> losses;
        for (int s = 0; s < kFtSteps; ++s) {
          std::mt19937_64 rng(1000 + s);
          const Batch whole = test::random_case_batch(fc, global, B, kFtT, 96, rng);
          losses.push_back(step.train({shard_rows(whole, step.data_shard())}, kLr).loss);
        }
        return losses;
      };
      auto one = parallel::make_local_runner(test::build_case(fc, c, B, kFtT).graph, *gpu, AdamWConfig{});
      one->set_parameters(init);
      const std::vector<double> want = run(*one);
      const std::vector<float> want_params = one->parameters();

      auto step = parallel::make_task_runner(test::build_case(fc, c, B / dp, kFtT).graph, c, AdamWConfig{},
                                             {tp, 1, false}, mpi_world(), *gpu);
      step->set_parameters(init);
      const std::vector<double> got = run(*step);
      for (int s = 0; s < kFtSteps; ++s) EXPECT_NEAR(got[s], want[s], 2e-2 * std::fabs(want[s])) << "step " << s + 1;
      EXPECT_NE(want.front(), want.back()) << "the reference did not move";
      const std::vector<float> params = step->parameters();
      ASSERT_EQ(params.size(), want_params.size());
      double worst = 0;
      for (size_t i = 0; i < params.size(); ++i) worst = std::max(worst, std::fabs(double(params[i]) - want_params[i]));
      EXPECT_LT(worst, 3e-3) << "parameters after " << kFtSteps << " steps (bf16 gradients)";
    }
  }
}

// Two pipeline stages on one GPU: the runner's 1F1B schedule on the executor, the activations and
// their gradients widened to fp32 on the device and sent through MPI (host memory), the tied
// embedding's gradient summed between the stages on the device, the norm summed over both stages,
// and the device step's AdamW. Within bf16's rounding it trains like one process.
TEST(RunnerGpu, PipelineTwoStagesOnOneGpuEqualOneProcess) {
  if (cuda_device_count() == 0) GTEST_SKIP() << device_summary();
  auto gpu = make_cuda_backend();
  auto one = one_process(*gpu, kB);
  const std::vector<StepResult> want = train(*one, 0, kB);
  const std::vector<float> want_params = one->parameters();
  const OptimizerState want_state = one->optimizer_state();

  auto step = parallel::make_gpt_runner(tiny(), kB, kT, kMicro, AdamWConfig{}, {1, 2, false}, mpi_world(), *gpu);
  ASSERT_EQ(step->grid().shape().pp, 2);
  step->set_parameters(initial());
  const std::vector<StepResult> got = train(*step, 0, kB);
  for (int s = 0; s < kSteps; ++s) {
    EXPECT_NEAR(got[s].loss, want[s].loss, 1e-2 * want[s].loss) << "step " << s + 1;
    EXPECT_NEAR(got[s].grad_norm, want[s].grad_norm, 2e-2 * want[s].grad_norm) << "step " << s + 1;
  }
  const std::vector<float> params = step->parameters();
  ASSERT_EQ(params.size(), want_params.size());
  double worst = 0;
  for (size_t i = 0; i < params.size(); ++i) worst = std::max(worst, std::fabs(double(params[i]) - want_params[i]));
  EXPECT_LT(worst, 2e-3) << "parameters after " << kSteps << " steps (bf16 gradients, lr 1e-3)";
  const OptimizerState state = step->optimizer_state();
  EXPECT_EQ(state.steps, want_state.steps);
  ASSERT_EQ(state.m.size(), want_state.m.size());
  double m_worst = 0, m_scale = 0;
  for (size_t i = 0; i < state.m.size(); ++i) {
    m_worst = std::max(m_worst, std::fabs(double(state.m[i]) - want_state.m[i]));
    m_scale = std::max(m_scale, std::fabs(double(want_state.m[i])));
  }
  EXPECT_LT(m_worst, 0.05 * m_scale) << "first moments in the single-process order";
  // Evaluation runs the stages too: the same loss as one process on the same batch.
  const Batch b = batch_of(0, 0, 0, kB);
  EXPECT_NEAR(step->evaluate(b), one->evaluate(b), 1e-2 * one->evaluate(b));
}
