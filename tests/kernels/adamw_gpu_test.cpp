// tests/kernels/adamw_gpu_test.cpp — the CUDA AdamW (fp32 master, per-segment lr scale and weight
// decay, grad scale read from the device) and the global gradient norm match the CPU reference
// (kernels/adamw.h); the norm is bitwise reproducible and its clip scale feeds AdamW on the device.
#include "tests/support/support.h"

#if FERRY_WITH_CUDA
#include "tests/kernels/adamw_cases.h"

namespace ferry::test {
namespace {

namespace cpu = ferry::kernels::cpu;
namespace gpu = ferry::kernels::cuda;

class AdamWGpu : public ::testing::TestWithParam<size_t> {};

TEST_P(AdamWGpu, UpdateMatchesCpuReferencePerSegment) {
  FERRY_SKIP_WITHOUT_GPU();
  check_adamw_update(GetParam(), test_seed());
}

TEST_P(AdamWGpu, GradNormMatchesCpuReferenceAndIsReproducible) {
  FERRY_SKIP_WITHOUT_GPU();
  const size_t n = GetParam();
  std::mt19937_64 rng(test_seed());
  const auto g = random_bf16_values(n, rng);
  const double ref = std::sqrt(cpu::grad_norm_squared(g.data(), n));
  std::vector<float> gf(g.begin(), g.end());

  DeviceBuffer<bf16> d_g(to_bf16(g));
  DeviceBuffer<float> d_gf(gf), d_norm(1), d_clip(1);
  DeviceBuffer<unsigned char> ws(gpu::grad_norm_workspace_bytes());
  const float max_norm = static_cast<float>(ref / 2);  // forces clipping
  gpu::grad_norm(d_norm.get(), d_clip.get(), d_g.get(), n, max_norm, ws.get(), ws.size(), nullptr);
  const auto norm1 = d_norm.download();
  FERRY_EXPECT_CLOSE(to_double(norm1), std::vector<double>{ref}, kFp32Tolerance);
  FERRY_EXPECT_CLOSE(to_double(d_clip.download()), std::vector<double>{max_norm / (ref + 1e-6)}, kFp32Tolerance);

  d_norm.poison();
  gpu::grad_norm(d_norm.get(), d_clip.get(), d_g.get(), n, max_norm, ws.get(), ws.size(), nullptr);
  EXPECT_TRUE(bitwise_equal(norm1, d_norm.download())) << "grad norm is not reproducible";

  gpu::grad_norm(d_norm.get(), d_clip.get(), d_gf.get(), n, 0.0f, ws.get(), ws.size(), nullptr);
  FERRY_EXPECT_CLOSE(to_double(d_norm.download()), std::vector<double>{ref}, kFp32Tolerance);
  EXPECT_EQ(d_clip.download()[0], 1.0f) << "max_norm 0 means no clipping";
}

INSTANTIATE_TEST_SUITE_P(Sizes, AdamWGpu, ::testing::Values(size_t(1), size_t(13), size_t(4096), size_t(1000003)));

}  // namespace
}  // namespace ferry::test
#else
TEST(AdamWGpu, SkippedInCpuOnlyBuild) { GTEST_SKIP() << "built without CUDA"; }
#endif
