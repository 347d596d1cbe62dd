// tests/parallel/runner_nccl_gpu_test.cpp — the one runner on the CUDA backend with an NCCL
// communicator of one rank (all one GPU can host: NCCL refuses two ranks on a device) runs whole
// steps: the DP bucket schedule (parallel/data_parallel.h) is issued into the step, buckets widened
// to fp32, all-reduced by NCCL on its own stream and narrowed back while backward runs, and the
// step is still captured as one CUDA graph with the collectives inside. A sum over one rank is a
// copy and bf16 → fp32 → bf16 is exact, so it must equal the single-process step bit for bit:
// losses, gradient norms, parameters and optimizer state. Several buckets (a small bucket size)
// so that events and the comm stream are exercised. And ZeRO-1 over the same one rank: the
// reduce-scatter, the norm's DP sum and the all-gather issued on NCCL's stream inside the step
// (forked and joined with events), captured and replayed equal to the same step run eagerly.
// Label gpu: skips (77) without a device or without NCCL in the build.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "engine/cuda/cuda_backend.h"
#include "engine/device.h"
#include "engine/model/gpt.h"
#include "parallel/step_factory.h"
#include "tests/parallel/runner_gpu_fixture.h"
#include "tests/support/support.h"

#if FERRY_WITH_NCCL
#include "parallel/communicator_nccl.h"
#endif

using namespace ferry;
using namespace ferry::test::runner_gpu;

TEST(RunnerNccl, OneRankRunsAWholeCapturedStepEqualToOneProcess) {
  FERRY_SKIP_WITHOUT_GPU();
#if !FERRY_WITH_NCCL
  GTEST_SKIP() << "this build has no NCCL";
#else
  auto gpu = make_cuda_backend();
  auto one = one_process(*gpu, kB);
  const std::vector<StepResult> want = train(*one, 0, kB);

  auto bootstrap = parallel::make_single_communicator();
  auto nccl = parallel::make_nccl_communicator(*bootstrap, parallel::NcclOptions{});
  parallel::ParallelLayout layout;
  layout.bucket_elems = 20000;  // several buckets in a 100k-parameter model
  auto step = parallel::make_gpt_runner(tiny(), kB, kT, kMicro, AdamWConfig{}, layout, *nccl, *gpu);
  step->set_parameters(initial());
  const std::vector<StepResult> got = train(*step, 0, kB);

  EXPECT_GT(step->graph_nodes(), 0u) << "the step with NCCL inside was not captured";
  EXPECT_GE(step->buckets_reduced_during_backward(), 2) << "buckets should be issued while backward runs";
  for (int s = 0; s < kSteps; ++s) {
    EXPECT_EQ(got[s].loss, want[s].loss) << "step " << s + 1;
    EXPECT_EQ(got[s].grad_norm, want[s].grad_norm) << "step " << s + 1;
  }
  EXPECT_LT(want.back().loss, want.front().loss) << "the reference did not train";
  EXPECT_EQ(step->parameters(), one->parameters());
  const OptimizerState a = step->optimizer_state(), b = one->optimizer_state();
  EXPECT_EQ(a.steps, b.steps);
  EXPECT_EQ(a.m, b.m);
  EXPECT_EQ(a.v, b.v);

  // Evaluation goes through the same communicator (a device scalar).
  const Batch held_out = batch_of(99, 0, 0, kB);
  EXPECT_EQ(step->evaluate(held_out), one->evaluate(held_out));
#endif
}

// ZeRO-1 with one NCCL rank: the shard is the whole buffer and every collective a copy, so the
// captured step must replay exactly what the eager one computes (losses, norms, parameters,
// moments), and follow one process closely (its AdamW reads the widened gradients, exact for one
// rank; only the norm's summation order may differ, which moves the clip scale in the last bits).
TEST(RunnerNccl, OneRankZero1CapturesAndReplaysEqualToEager) {
  FERRY_SKIP_WITHOUT_GPU();
#if !FERRY_WITH_NCCL
  GTEST_SKIP() << "this build has no NCCL";
#else
  auto gpu = make_cuda_backend();
  auto one = one_process(*gpu, kB);
  const std::vector<StepResult> want = train(*one, 0, kB);
  const std::vector<float> want_params = one->parameters();

  auto bootstrap = parallel::make_single_communicator();
  auto nccl = parallel::make_nccl_communicator(*bootstrap, parallel::NcclOptions{});
  parallel::ParallelLayout layout;
  layout.zero1 = true;
  auto eager = parallel::make_gpt_runner(tiny(), kB, kT, kMicro, AdamWConfig{}, layout, *nccl, *gpu);
  eager->set_graph_replay(false);
  eager->set_parameters(initial());
  const std::vector<StepResult> eager_steps = train(*eager, 0, kB);
  EXPECT_EQ(eager->graph_nodes(), 0u);

  auto replayed = parallel::make_gpt_runner(tiny(), kB, kT, kMicro, AdamWConfig{}, layout, *nccl, *gpu);
  replayed->set_parameters(initial());
  const std::vector<StepResult> got = train(*replayed, 0, kB);
  EXPECT_GT(replayed->graph_nodes(), 0u) << "the ZeRO-1 step with NCCL inside was not captured";

  for (int s = 0; s < kSteps; ++s) {
    EXPECT_EQ(got[s].loss, eager_steps[s].loss) << "step " << s + 1;
    EXPECT_EQ(got[s].grad_norm, eager_steps[s].grad_norm) << "step " << s + 1;
    EXPECT_NEAR(got[s].loss, want[s].loss, 1e-3 * want[s].loss) << "step " << s + 1;
    EXPECT_NEAR(got[s].grad_norm, want[s].grad_norm, 1e-3 * want[s].grad_norm) << "step " << s + 1;
  }
  EXPECT_LT(want.back().loss, want.front().loss) << "the reference did not train";
  const std::vector<float> params = replayed->parameters();
  EXPECT_EQ(params, eager->parameters());
  ASSERT_EQ(params.size(), want_params.size());
  double worst = 0;
  for (size_t i = 0; i < params.size(); ++i) worst = std::max(worst, std::fabs(double(params[i]) - want_params[i]));
  EXPECT_LT(worst, 1e-4) << "parameters after " << kSteps << " steps against one process";
  const OptimizerState a = replayed->optimizer_state(), b = eager->optimizer_state();
  EXPECT_EQ(a.steps, kSteps);
  EXPECT_EQ(a.m, b.m);
  EXPECT_EQ(a.v, b.v);
#endif
}
