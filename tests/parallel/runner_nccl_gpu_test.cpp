// tests/parallel/runner_nccl_gpu_test.cpp — the one runner on the CUDA backend with an NCCL
// communicator of one rank (all one GPU can host: NCCL refuses two ranks on a device) runs whole
// steps: the DP bucket schedule (parallel/data_parallel.h) is issued into the step, buckets widened
// to fp32, all-reduced by NCCL on its own stream and narrowed back while backward runs, and the
// step is still captured as one CUDA graph with the collectives inside. A sum over one rank is a
// copy and bf16 → fp32 → bf16 is exact, so it must equal the single-process step bit for bit:
// losses, gradient norms, parameters and optimizer state. Several buckets (a small bucket size)
// so that events and the comm stream are exercised. Label gpu: skips (77) without a device or
// without NCCL in the build.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "engine/cuda/cuda_backend.h"
#include "engine/device.h"
#include "engine/model/gpt.h"
#include "parallel/step_factory.h"
#include "tests/support/support.h"

#if FERRY_WITH_NCCL
#include "parallel/communicator_nccl.h"
#endif

using namespace ferry;

namespace {

constexpr int kB = 2, kT = 32, kMicro = 2, kSteps = 4;
constexpr float kLr = 1e-3f;

GptConfig tiny() {
  GptConfig c;
  c.preset = "runner-nccl-test";
  c.n_layer = 2;
  c.n_head = 4;
  c.n_embd = 64;
  c.vocab_size = 128;
  c.max_seq_len = kT;
  return c;
}

Batch batch_of(int s, int k, int tokens, int targets) {
  std::vector<int32_t> x, y;
  for (int r = 0; r < kB; ++r) {
    std::mt19937 rng(static_cast<uint32_t>(7919 * s + 131 * k + r));
    for (int t = 0; t < kT; ++t) {
      x.push_back(static_cast<int32_t>(rng() % 128));
      y.push_back(static_cast<int32_t>(rng() % 128));
    }
  }
  Batch b;
  b.inputs.emplace_back(tokens, std::move(x));
  b.inputs.emplace_back(targets, std::move(y));
  return b;
}

std::vector<StepResult> train(StepRunner& step) {
  const GptGraph ids = build_gpt(tiny(), GptBuildOptions{});
  std::vector<StepResult> out;
  for (int s = 0; s < kSteps; ++s) {
    std::vector<Batch> micro;
    for (int k = 0; k < kMicro; ++k) micro.push_back(batch_of(s, k, ids.tokens, ids.targets));
    out.push_back(step.train(micro, kLr));
  }
  return out;
}

std::vector<float> initial() {
  const GptGraph g = build_gpt(tiny(), GptBuildOptions{});
  std::vector<double> init;
  init_gpt_params(g.graph, tiny(), 99, init);
  return {init.begin(), init.end()};
}

}  // namespace

TEST(RunnerNccl, OneRankRunsAWholeCapturedStepEqualToOneProcess) {
  FERRY_SKIP_WITHOUT_GPU();
#if !FERRY_WITH_NCCL
  GTEST_SKIP() << "this build has no NCCL";
#else
  auto gpu = make_cuda_backend();
  GptBuildOptions o;
  o.batch = kB;
  o.seq_len = kT;
  o.dtype = DType::BF16;
  o.loss_scale = 1.0f / kMicro;
  auto one = parallel::make_local_runner(build_gpt(tiny(), o).graph, *gpu, AdamWConfig{});
  one->set_parameters(initial());
  const std::vector<StepResult> want = train(*one);

  auto bootstrap = parallel::make_single_communicator();
  auto nccl = parallel::make_nccl_communicator(*bootstrap, parallel::NcclOptions{});
  parallel::ParallelLayout layout;
  layout.bucket_elems = 20000;  // several buckets in a 100k-parameter model
  auto step = parallel::make_gpt_runner(tiny(), kB, kT, kMicro, AdamWConfig{}, layout, *nccl, *gpu);
  step->set_parameters(initial());
  const std::vector<StepResult> got = train(*step);

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
  const GptGraph ids = build_gpt(tiny(), GptBuildOptions{});
  const Batch held_out = batch_of(99, 0, ids.tokens, ids.targets);
  EXPECT_EQ(step->evaluate(held_out), one->evaluate(held_out));
#endif
}
