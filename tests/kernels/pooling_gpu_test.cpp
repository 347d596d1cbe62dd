// tests/kernels/pooling_gpu_test.cpp — the fine-tuning kernels on CUDA (kernels/pooling.h:
// pool_tokens and its backward in every mode, scale in bf16 and fp32, the weighted loss sum) match
// the CPU references on fresh random bf16 inputs: ragged lengths (full, short, one token, and 0 and
// > T, which the contract clamps), odd channel counts, outputs poisoned first. Reproducible: a
// second run gives the same bits.
#include "tests/support/support.h"

#if FERRY_WITH_CUDA
#include "tests/kernels/pooling_cases.h"

namespace ferry::test {
namespace {

namespace cpu = ferry::kernels::cpu;
namespace gpu = ferry::kernels::cuda;

class PoolTokensGpu : public ::testing::TestWithParam<PoolCase> {};

TEST_P(PoolTokensGpu, ForwardAndBackwardMatchCpuReferenceOnRaggedLengths) {
  FERRY_SKIP_WITHOUT_GPU();
  check_pool_tokens(GetParam(), test_seed());
}

INSTANTIATE_TEST_SUITE_P(Shapes, PoolTokensGpu,
                         ::testing::Values(PoolCase{4, 7, 24, 0}, PoolCase{4, 7, 24, 1}, PoolCase{4, 7, 24, 2},
                                           PoolCase{6, 33, 130, 1}, PoolCase{6, 33, 130, 2},
                                           PoolCase{16, 128, 768, 2}, PoolCase{16, 128, 768, 1},
                                           PoolCase{3, 1, 5, 2}, PoolCase{70, 64, 257, 2}));

class ScaleGpu : public ::testing::TestWithParam<size_t> {};

TEST_P(ScaleGpu, MatchesCpuReferenceInBf16AndFp32InPlaceToo) {
  FERRY_SKIP_WITHOUT_GPU();
  std::mt19937_64 rng(test_seed());
  const size_t n = GetParam();
  const auto x = random_bf16_values(n, rng, -3.0, 3.0);
  const double s = 16.0 / 3.0;  // LoRA's alpha / rank at alpha 16, rank 3: not a power of two
  std::vector<double> ref(n);
  cpu::scale(ref.data(), x.data(), s, n);

  DeviceBuffer<bf16> dx(to_bf16(x)), dy(n);
  gpu::scale(dy.get(), dx.get(), float(s), n, nullptr);
  FERRY_EXPECT_CLOSE(to_double(dy.download()), ref, kBf16Tolerance);
  gpu::scale(dx.get(), dx.get(), float(s), n, nullptr);
  FERRY_EXPECT_CLOSE(to_double(dx.download()), ref, kBf16Tolerance);

  std::vector<float> xf(x.begin(), x.end());
  DeviceBuffer<float> fx(xf), fy(n);
  gpu::scale(fy.get(), fx.get(), float(s), n, nullptr);
  FERRY_EXPECT_CLOSE(to_double(fy.download()), ref, kFp32Tolerance);
}

INSTANTIATE_TEST_SUITE_P(Sizes, ScaleGpu, ::testing::Values(size_t(1), size_t(13), size_t(4096), size_t(100003)));

TEST(WeightedSumGpu, MatchesTheCpuOpsFp64Sum) {
  FERRY_SKIP_WITHOUT_GPU();
  std::mt19937_64 rng(test_seed());
  for (int n : {1, 2, 5, gpu::kMaxWeightedTerms}) {
    const auto l = random_vector<float>(size_t(n), rng, 0.0, 5.0);
    const auto w = random_vector<double>(size_t(n), rng, 0.1, 2.0);
    double ref = 0;  // engine/ops/pooling.cpp's sum_losses
    for (int k = 0; k < n; ++k) ref += w[k] * double(l[k]);
    DeviceBuffer<float> terms(l), out(1);
    std::vector<const float*> ptrs;
    for (int k = 0; k < n; ++k) ptrs.push_back(terms.get() + k);
    gpu::weighted_sum(out.get(), ptrs.data(), w.data(), n, nullptr);
    // fp64 on both sides; only a contracted multiply-add may differ, far below the fp32 result's grid.
    EXPECT_NEAR(out.download()[0], ref, 1e-6 * std::abs(ref)) << n << " terms";
  }
}

TEST(WeightedSumGpu, RefusesMoreTermsThanItCarries) {
  FERRY_SKIP_WITHOUT_GPU();
  std::vector<const float*> ptrs(gpu::kMaxWeightedTerms + 1, nullptr);
  std::vector<double> w(ptrs.size(), 1.0);
  EXPECT_THROW(gpu::weighted_sum(nullptr, ptrs.data(), w.data(), int(ptrs.size()), nullptr), gpu::CudaError);
}

}  // namespace
}  // namespace ferry::test
#else
TEST(PoolingGpu, SkippedInCpuOnlyBuild) { GTEST_SKIP() << "built without CUDA"; }
#endif
