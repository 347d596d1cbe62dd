// tests/parallel/runner_gpu_mpi_test.cpp — the one runner on the CUDA backend under data
// parallelism with the MPI communicator: two ranks share one GPU (MPI stages the gradients through
// host memory, so no one-rank-per-device rule applies) and train like one process with the global
// batch, within bf16's rounding (the DP sum rounds the gradients to bf16 once more than one process
// does); tensor parallelism over the same two ranks trains like one process too, and so does every
// fine-tuning graph under DP (each rank's losses divided by the global label count, a step input)
// and under TP; so does ZeRO-1 over the two ranks (the optimizer state sharded on the device, the
// collectives staged through host memory), its state read back in the single-process order, and
// so do two pipeline stages (the runner's own 1F1B on the executor).
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

namespace {

// Losses and clipped norms within bf16's rounding of one process's, step by step, and a reference
// that trained.
void expect_trains_like(const std::vector<StepResult>& got, const std::vector<StepResult>& want) {
  for (int s = 0; s < kSteps; ++s) {
    EXPECT_NEAR(got[s].loss, want[s].loss, 1e-2 * want[s].loss) << "step " << s + 1;
    EXPECT_NEAR(got[s].grad_norm, want[s].grad_norm, 2e-2 * want[s].grad_norm) << "step " << s + 1;
  }
  EXPECT_LT(want.back().loss, want.front().loss) << "the reference did not train";
}

// Parameters within 2e-3 of one process's after kSteps, whose parameters moved further than that
// from initial() (or the comparison would prove nothing).
void expect_params_near(const std::vector<float>& params, const std::vector<float>& want_params) {
  ASSERT_EQ(params.size(), want_params.size());
  double worst = 0, moved = 0;
  const std::vector<float> start = initial();
  for (size_t i = 0; i < params.size(); ++i) {
    worst = std::max(worst, std::fabs(double(params[i]) - want_params[i]));
    moved = std::max(moved, std::fabs(double(want_params[i]) - start[i]));
  }
  EXPECT_LT(worst, 2e-3) << "parameters after " << kSteps << " steps (bf16 gradients, lr 1e-3)";
  EXPECT_GT(moved, 2e-3) << "the reference's parameters barely moved: the comparison above would prove nothing";
}

}  // namespace

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

namespace {

// A model-parallel layout over the two ranks (each holds part of the model, both read the whole
// batch) against one process on the same GPU, within bf16's rounding: the losses, the clipped norms
// (a replicated or tied parameter counted once, not twice), the parameters and first moments read
// back in the single-process order, and an evaluation pass.
void expect_model_parallel_equals_one_process(parallel::ParallelLayout layout) {
  auto gpu = make_cuda_backend();
  auto one = one_process(*gpu, kB);
  const std::vector<StepResult> want = train(*one, 0, kB);
  const std::vector<float> want_params = one->parameters();
  const OptimizerState want_state = one->optimizer_state();

  auto step = parallel::make_gpt_runner(tiny(), kB, kT, kMicro, AdamWConfig{}, layout, mpi_world(), *gpu);
  ASSERT_EQ(step->grid().shape().tp, layout.tp);
  ASSERT_EQ(step->grid().shape().pp, layout.pp);
  step->set_parameters(initial());
  const std::vector<StepResult> got = train(*step, 0, kB);
  expect_trains_like(got, want);
  const std::vector<float> params = step->parameters();
  expect_params_near(params, want_params);
  const OptimizerState state = step->optimizer_state();
  EXPECT_EQ(state.steps, want_state.steps);
  ASSERT_EQ(state.m.size(), want_state.m.size());
  double m_worst = 0, m_scale = 0;
  for (size_t i = 0; i < state.m.size(); ++i) {
    m_worst = std::max(m_worst, std::fabs(double(state.m[i]) - want_state.m[i]));
    m_scale = std::max(m_scale, std::fabs(double(want_state.m[i])));
  }
  EXPECT_LT(m_worst, 0.05 * m_scale) << "first moments in the single-process order";
  const Batch b = batch_of(0, 0, 0, kB);
  const double want_eval = one->evaluate(b);
  EXPECT_NEAR(step->evaluate(b), want_eval, 1e-2 * want_eval) << "evaluation";
}

}  // namespace

// Tensor parallelism on the device: two ranks share the GPU, each holding half of every split
// layer and half of the vocabulary; the TP ops' collectives (the row-parallel sums, the
// vocabulary-parallel cross-entropy's maxima and exp-sums) and the norm's sum go through the MPI
// communicator, staged through pinned host memory (eager steps). Within bf16's rounding (the
// partial sums are rounded to bf16 before they are added) it trains like one process: the same
// losses, the same clipped norm (a replicated parameter counted once, not twice), and
// parameters and moments read back in the single-process order.
TEST(RunnerGpu, TensorParallelTwoRanksOnOneGpuEqualOneProcess) {
  if (cuda_device_count() == 0) GTEST_SKIP() << device_summary();
  expect_model_parallel_equals_one_process({2, 1, false});
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

// ZeRO-1 on the device: each rank keeps the fp32 master weights and AdamW's moments of its half of
// the storage; the bf16 gradients are widened and reduce-scattered, the norm summed over both
// shards, the master halves all-gathered into the bf16 working copy — every collective through the
// MPI communicator, staged through pinned host memory (eager steps). It trains like one process
// with the global batch within bf16's rounding (its AdamW reads the fp32 sum where DP without
// ZeRO-1 reads the sum rounded to bf16), and its parameters and moments, gathered into the
// single-process order, are those of DP2 without ZeRO-1. A state written by one layout and read by
// the other comes back unchanged: checkpoints stay layout-independent.
TEST(RunnerGpu, Zero1TwoRanksOnOneGpuEqualOneProcessAndDataParallelState) {
  if (cuda_device_count() == 0) GTEST_SKIP() << device_summary();
  const int dp = mpi_world().size();
  auto gpu = make_cuda_backend();
  auto one = one_process(*gpu, kB * dp);
  const std::vector<StepResult> want = train(*one, 0, kB * dp);
  const std::vector<float> want_params = one->parameters();

  auto plain = parallel::make_gpt_runner(tiny(), kB, kT, kMicro, AdamWConfig{}, {1, 1, false}, mpi_world(), *gpu);
  plain->set_parameters(initial());
  train(*plain, plain->data_shard().rank * kB, kB);
  const OptimizerState plain_state = plain->optimizer_state();

  auto step = parallel::make_gpt_runner(tiny(), kB, kT, kMicro, AdamWConfig{}, {1, 1, true}, mpi_world(), *gpu);
  step->set_parameters(initial());
  const std::vector<StepResult> got = train(*step, step->data_shard().rank * kB, kB);
  expect_trains_like(got, want);
  const std::vector<float> params = step->parameters();
  expect_params_near(params, want_params);
  // Both ranks read back the same whole model (each shard came from its owner).
  std::vector<float> sum = params;
  mpi_world().all_reduce(sum.data(), sum.size(), parallel::DType::f32, parallel::ReduceOp::sum);
  for (size_t i = 0; i < sum.size(); i += 97) EXPECT_NEAR(sum[i], dp * params[i], 1e-6 + 1e-6 * std::fabs(sum[i]));

  const OptimizerState state = step->optimizer_state();
  EXPECT_EQ(state.steps, plain_state.steps);
  ASSERT_EQ(state.m.size(), plain_state.m.size());
  ASSERT_EQ(state.v.size(), plain_state.v.size());
  double m_worst = 0, m_scale = 0, v_worst = 0, v_scale = 0;
  for (size_t i = 0; i < state.m.size(); ++i) {
    m_worst = std::max(m_worst, std::fabs(double(state.m[i]) - plain_state.m[i]));
    m_scale = std::max(m_scale, std::fabs(double(plain_state.m[i])));
    v_worst = std::max(v_worst, std::fabs(double(state.v[i]) - plain_state.v[i]));
    v_scale = std::max(v_scale, std::fabs(double(plain_state.v[i])));
  }
  EXPECT_GT(m_scale, 0.0) << "DP2 without ZeRO-1 kept no moments";
  EXPECT_LT(m_worst, 0.05 * m_scale) << "first moments in the single-process order";
  EXPECT_LT(v_worst, 0.05 * v_scale) << "second moments in the single-process order";

  // Layout-independent state: DP2's parameters and moments loaded into a fresh ZeRO-1 run (each
  // rank keeps its shard) read back exactly, and a step from there matches DP2's next step.
  auto resumed = parallel::make_gpt_runner(tiny(), kB, kT, kMicro, AdamWConfig{}, {1, 1, true}, mpi_world(), *gpu);
  const std::vector<float> plain_params = plain->parameters();
  resumed->set_parameters(plain_params);
  resumed->set_optimizer_state(plain_state);
  EXPECT_EQ(resumed->parameters(), plain_params);
  const OptimizerState back = resumed->optimizer_state();
  EXPECT_EQ(back.steps, plain_state.steps);
  EXPECT_EQ(back.m, plain_state.m);
  EXPECT_EQ(back.v, plain_state.v);
  std::vector<Batch> micro;
  for (int k = 0; k < kMicro; ++k) micro.push_back(batch_of(kSteps, k, resumed->data_shard().rank * kB, kB));
  const StepResult next_plain = plain->train(micro, kLr), next_resumed = resumed->train(micro, kLr);
  EXPECT_NEAR(next_resumed.loss, next_plain.loss, 1e-6 * next_plain.loss) << "the same weights give the same loss";
}

// Two pipeline stages on one GPU: the runner's 1F1B schedule on the executor, the activations and
// their gradients widened to fp32 on the device and sent through MPI (host memory), the tied
// embedding's gradient summed between the stages on the device, the norm summed over both stages,
// and the device step's AdamW. Within bf16's rounding it trains like one process.
TEST(RunnerGpu, PipelineTwoStagesOnOneGpuEqualOneProcess) {
  if (cuda_device_count() == 0) GTEST_SKIP() << device_summary();
  expect_model_parallel_equals_one_process({1, 2, false});
}
