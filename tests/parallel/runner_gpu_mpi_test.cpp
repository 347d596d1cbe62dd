// tests/parallel/runner_gpu_mpi_test.cpp — the one runner on the CUDA backend under data
// parallelism with the MPI communicator: two ranks share one GPU (MPI stages the gradients through
// host memory, so no one-rank-per-device rule applies) and train like one process with the global
// batch, within bf16's rounding (the DP sum rounds the gradients to bf16 once more than one process
// does). And the layouts CUDA does not run yet are refused with one line, not run wrong.
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
