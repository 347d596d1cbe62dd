// tests/finetune/finetune_gpu_test.cpp — every fine-tuning graph (tests/finetune/finetune_graphs.h:
// sentiment with each pooling, LoRA, frozen blocks, NER, causal and masked LM, multi-task) trains on
// the CUDA backend as on the CPU: the same fp32 graph, parameters and ragged batches, the CUDA step
// retyping it to bf16; losses and gradient norms of three steps agree within bf16's tolerances
// (see tests/engine/cuda_step_gpu_test.cpp), and Inference's logits on the device match the CPU's.
// Head sizes 16 (the plain attention kernels) and 64 (the flash kernels). Skips without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "engine/backend.h"
#include "engine/finetune/inference.h"
#include "engine/model/gpt.h"
#include "tests/finetune/finetune_graphs.h"
#include "tests/support/support.h"
#include "parallel/step_factory.h"

namespace ferry {
namespace {

constexpr int kB = 4, kT = 24, kSteps = 3;

struct TrainedRun {
  std::vector<double> losses, norms;
  std::vector<float> params;
};

TrainedRun train(const test::FinetuneCase& fc, const GptConfig& c, Backend& backend, const std::vector<float>& init,
          const std::vector<Batch>& batches) {
  test::BuiltCase b = test::build_case(fc, c, kB, kT);
  auto step_runner = ferry::parallel::make_local_runner(std::move(b.graph), backend, AdamWConfig{});
  ferry::parallel::Runner& step = *step_runner;
  step.set_parameters(init);
  TrainedRun r;
  for (const Batch& batch : batches) {
    const StepResult s = step.train({batch}, 1e-3f);
    r.losses.push_back(s.loss);
    r.norms.push_back(s.grad_norm);
  }
  r.params = step.parameters();
  return r;
}

std::vector<float> logits_of(const test::FinetuneCase& fc, const GptConfig& c, Backend& backend,
                             const std::vector<float>& params, const Batch& batch) {
  test::BuiltCase b = test::build_case(fc, c, kB, kT);
  const int logits = b.logits[0];
  Inference inf(std::move(b.graph), logits, backend);
  inf.set_parameters(params);
  return inf.logits(batch);
}

double rel(double got, double ref) { return std::abs(got - ref) / std::max(std::abs(ref), 1e-6); }

class FinetuneGpu : public ::testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(FinetuneGpu, EveryFinetuneGraphTrainsOnCudaAsOnCpu) {
  FERRY_SKIP_WITHOUT_GPU();
  const auto [n_embd, n_head] = GetParam();
  auto cpu = make_backend("cpu");
  auto cuda = make_backend("cuda");
  for (const auto& fc : test::finetune_cases()) {
    SCOPED_TRACE(fc.name + " C" + std::to_string(n_embd));
    const GptConfig c = test::finetune_config(fc.causal, n_embd, n_head);
    const test::BuiltCase shape = test::build_case(fc, c, kB, kT);
    std::vector<double> init64;
    init_gpt_params(shape.graph, c, test::test_seed(), init64);
    std::vector<float> init(init64.begin(), init64.end());
    init_lora_params(shape.graph, test::test_seed(), init);
    std::mt19937_64 rng(test::test_seed() + 1);
    std::vector<Batch> batches;
    for (int s = 0; s < kSteps; ++s)
      batches.push_back(test::random_case_batch(fc, shape, kB, kT, c.vocab_size, rng));

    const TrainedRun ref = train(fc, c, *cpu, init, batches);
    const TrainedRun got = train(fc, c, *cuda, init, batches);
    for (int s = 0; s < kSteps; ++s) {
      EXPECT_LT(rel(got.losses[s], ref.losses[s]), 2e-2) << "step " << s << ": " << got.losses[s] << " vs "
                                                         << ref.losses[s];
      EXPECT_LT(rel(got.norms[s], ref.norms[s]), 1e-1) << "step " << s << ": " << got.norms[s] << " vs "
                                                       << ref.norms[s];
    }
    if (fc.heads.size() == 1 && fc.heads[0].kind != HeadKind::LanguageModel) {
      // Inference reads logits of a forward-only graph (LM logits are not an output there).
      const auto want = logits_of(fc, c, *cpu, ref.params, batches[0]);
      const auto have = logits_of(fc, c, *cuda, ref.params, batches[0]);
      ASSERT_EQ(have.size(), want.size());
      double d = 0, n = 0;
      for (size_t i = 0; i < want.size(); ++i) {
        ASSERT_FALSE(std::isnan(have[i])) << i;
        d += (have[i] - want[i]) * (have[i] - want[i]);
        n += double(want[i]) * want[i];
      }
      EXPECT_LT(std::sqrt(d / std::max(n, 1e-12)), 5e-2) << "logits";
    }
  }
}

// (64, 4): head size 16, the plain attention kernels; (128, 2): head size 64, the flash kernels.
INSTANTIATE_TEST_SUITE_P(HeadSizes, FinetuneGpu, ::testing::Values(std::tuple{64, 4}, std::tuple{128, 2}));

TEST(FinetuneGpu, AutoPicksTheGpuForFinetuningAndTheCpuOtherwise) {
  FERRY_SKIP_WITHOUT_GPU();
  EXPECT_EQ(make_backend("auto", AutoDevice::Gpu)->device(), Device::CUDA);
  EXPECT_EQ(make_backend("auto")->device(), Device::CPU);
}

}  // namespace
}  // namespace ferry
