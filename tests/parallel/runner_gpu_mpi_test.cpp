// tests/parallel/runner_gpu_mpi_test.cpp — the one runner on the CUDA backend under data
// parallelism with the MPI communicator: two ranks share one GPU (MPI stages the gradients through
// host memory, so no one-rank-per-device rule applies) and train like one process with the global
// batch, within bf16's rounding (the DP sum rounds the gradients to bf16 once more than one process
// does). And the layouts CUDA does not run yet are refused with one line, not run wrong.
// Labels mpi and gpu: skips (77) on every rank without a device.
// ferry-mpi-ranks: 2
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/device.h"
#include "engine/model/gpt.h"
#include "parallel/step_factory.h"
#include "tests/parallel/mpi_world.h"

using namespace ferry;
using ferry::test::mpi_world;

namespace {

constexpr int kB = 2, kT = 32, kMicro = 2, kSteps = 4;
constexpr float kLr = 1e-3f;

GptConfig tiny() {
  GptConfig c;
  c.preset = "runner-gpu-test";
  c.n_layer = 2;
  c.n_head = 4;
  c.n_embd = 64;
  c.vocab_size = 128;
  c.max_seq_len = kT;
  return c;
}

// Rows [first, first + rows) of global micro-batch k of step s.
Batch batch_of(int s, int k, int first, int rows, int tokens, int targets) {
  std::vector<int32_t> x, y;
  for (int r = first; r < first + rows; ++r) {
    std::mt19937 rng(static_cast<uint32_t>(7919 * s + 131 * k + r));
    std::vector<int32_t> seq(kT + 1);
    int32_t v = static_cast<int32_t>(rng() % 128);
    for (auto& t : seq) t = v = (v + 1 + static_cast<int32_t>(rng() % 4 == 0 ? rng() % 7 : 0)) % 128;
    x.insert(x.end(), seq.begin(), seq.end() - 1);
    y.insert(y.end(), seq.begin() + 1, seq.end());
  }
  Batch b;
  b.inputs.emplace_back(tokens, std::move(x));
  b.inputs.emplace_back(targets, std::move(y));
  return b;
}

std::vector<double> train(StepRunner& step, int dp_rank, int rows) {
  const GptGraph ids = build_gpt(tiny(), GptBuildOptions{});
  std::vector<double> losses;
  for (int s = 0; s < kSteps; ++s) {
    std::vector<Batch> micro;
    for (int k = 0; k < kMicro; ++k) micro.push_back(batch_of(s, k, dp_rank * rows, rows, ids.tokens, ids.targets));
    losses.push_back(step.train(micro, kLr).loss);
  }
  return losses;
}

std::vector<float> initial() {
  const GptGraph g = build_gpt(tiny(), GptBuildOptions{});
  std::vector<double> init;
  init_gpt_params(g.graph, tiny(), 99, init);
  return {init.begin(), init.end()};
}

}  // namespace

TEST(RunnerGpu, DataParallelTwoRanksOnOneGpuEqualOneProcess) {
  if (cuda_device_count() == 0) GTEST_SKIP() << device_summary();
  const int dp = mpi_world().size();
  auto gpu = make_cuda_backend();
  GptBuildOptions o;
  o.batch = kB * dp;
  o.seq_len = kT;
  o.dtype = DType::BF16;
  o.loss_scale = 1.0f / kMicro;
  auto one = parallel::make_local_runner(build_gpt(tiny(), o).graph, *gpu, AdamWConfig{});
  one->set_parameters(initial());
  const std::vector<double> want = train(*one, 0, kB * dp);
  const std::vector<float> want_params = one->parameters();

  auto step = parallel::make_gpt_runner(tiny(), kB, kT, kMicro, AdamWConfig{}, {}, mpi_world(), *gpu);
  step->set_parameters(initial());
  const std::vector<double> got = train(*step, step->data_shard().rank, kB);
  for (int s = 0; s < kSteps; ++s) EXPECT_NEAR(got[s], want[s], 1e-2 * want[s]) << "step " << s + 1;
  EXPECT_LT(want.back(), want.front()) << "the reference did not train";
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

TEST(RunnerGpu, TensorParallelOnCudaIsRefusedWithOneLine) {
  if (cuda_device_count() == 0) GTEST_SKIP() << device_summary();
  auto gpu = make_cuda_backend();
  try {
    parallel::make_gpt_runner(tiny(), kB, kT, kMicro, AdamWConfig{}, {2, 1, false}, mpi_world(), *gpu);
    ADD_FAILURE() << "tp2 on CUDA was accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("CPU backend"), std::string::npos) << e.what();
  }
}
