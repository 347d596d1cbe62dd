// tests/kernels/cross_entropy_gpu_test.cpp — the fused CUDA softmax-cross-entropy matches the CPU
// reference (kernels/cross_entropy.h): fp32 losses and mean, bf16 dlogits (also in place), ignored
// rows, and rows of a padded vocabulary (ld > V: the padding columns hold NaN, which must never be
// read, and get an exactly zero gradient).
#include "tests/support/support.h"

#if FERRY_WITH_CUDA
#include "kernels/cross_entropy.h"
#include "tests/kernels/cuda_test_util.h"

namespace ferry::test {
namespace {

namespace cpu = ferry::kernels::cpu;
namespace gpu = ferry::kernels::cuda;

struct Shape {
  int N, V, ld;
};

class CrossEntropyGpu : public ::testing::TestWithParam<Shape> {};

TEST_P(CrossEntropyGpu, LossesMeanAndGradientMatchCpuReference) {
  FERRY_SKIP_WITHOUT_GPU();
  const auto [N, V, ld] = GetParam();
  constexpr int32_t kIgnore = -100;
  std::mt19937_64 rng(test_seed());
  auto logits = random_bf16_values(size_t(N) * ld, rng, -6.0, 6.0);
  for (int n = 0; n < N; ++n)
    for (int v = V; v < ld; ++v) logits[size_t(n) * ld + v] = std::nan("");  // padding: never read
  std::uniform_int_distribution<int32_t> cls(0, V - 1);
  std::bernoulli_distribution ignored(0.2);
  std::vector<int32_t> targets(N);
  for (auto& t : targets) t = ignored(rng) ? kIgnore : cls(rng);
  const double scale = 0.75;

  std::vector<double> losses_ref(N), dlogits_ref(logits.size());
  const double mean_ref = cpu::cross_entropy_forward_backward(losses_ref.data(), dlogits_ref.data(), logits.data(),
                                                              targets.data(), N, V, ld, scale, kIgnore);
  for (int n = 0; n < N; ++n)
    for (int v = V; v < ld; ++v) ASSERT_EQ(dlogits_ref[size_t(n) * ld + v], 0.0) << "reference padding gradient";

  DeviceBuffer<bf16> d_logits(to_bf16(logits)), d_dlogits(logits.size());
  DeviceBuffer<int32_t> d_targets(targets);
  DeviceBuffer<float> d_losses(N), d_mean(1);
  DeviceBuffer<unsigned char> ws(gpu::cross_entropy_workspace_bytes());
  gpu::cross_entropy_forward_backward(d_losses.get(), d_mean.get(), d_dlogits.get(), d_logits.get(), d_targets.get(),
                                      N, V, ld, float(scale), kIgnore, ws.get(), ws.size(), nullptr);
  FERRY_EXPECT_CLOSE(to_double(d_losses.download()), losses_ref, kFp32Tolerance);
  FERRY_EXPECT_CLOSE(to_double(d_mean.download()), std::vector<double>{mean_ref}, kFp32Tolerance);
  FERRY_EXPECT_CLOSE(to_double(d_dlogits.download()), dlogits_ref, kBf16Tolerance);

  // In place: dlogits overwrites logits.
  d_losses.poison();
  gpu::cross_entropy_forward_backward(d_losses.get(), d_mean.get(), d_logits.get(), d_logits.get(), d_targets.get(),
                                      N, V, ld, float(scale), kIgnore, ws.get(), ws.size(), nullptr);
  FERRY_EXPECT_CLOSE(to_double(d_losses.download()), losses_ref, kFp32Tolerance);
  FERRY_EXPECT_CLOSE(to_double(d_logits.download()), dlogits_ref, kBf16Tolerance);

  // Forward only (evaluation): no dlogits.
  d_losses.poison();
  d_mean.poison();
  d_logits.upload(to_bf16(logits));
  gpu::cross_entropy_forward_backward(d_losses.get(), d_mean.get(), nullptr, d_logits.get(), d_targets.get(), N, V,
                                      ld, float(scale), kIgnore, ws.get(), ws.size(), nullptr);
  FERRY_EXPECT_CLOSE(to_double(d_losses.download()), losses_ref, kFp32Tolerance);
  FERRY_EXPECT_CLOSE(to_double(d_mean.download()), std::vector<double>{mean_ref}, kFp32Tolerance);
}

TEST(CrossEntropyGpuEdge, AllRowsIgnoredGiveZeroMeanAndZeroGradient) {
  FERRY_SKIP_WITHOUT_GPU();
  const int N = 5, V = 33;
  std::mt19937_64 rng(test_seed());
  const auto logits = random_bf16_values(size_t(N) * V, rng);
  DeviceBuffer<bf16> d_logits(to_bf16(logits)), d_dlogits(logits.size());
  DeviceBuffer<int32_t> d_targets(std::vector<int32_t>(N, -1));
  DeviceBuffer<float> d_losses(N), d_mean(1);
  DeviceBuffer<unsigned char> ws(gpu::cross_entropy_workspace_bytes());
  gpu::cross_entropy_forward_backward(d_losses.get(), d_mean.get(), d_dlogits.get(), d_logits.get(), d_targets.get(),
                                      N, V, V, 1.0f, -1, ws.get(), ws.size(), nullptr);
  EXPECT_EQ(d_mean.download()[0], 0.0f);
  for (float l : d_losses.download()) EXPECT_EQ(l, 0.0f);
  for (double g : to_double(d_dlogits.download())) EXPECT_EQ(g, 0.0);
}

// ld = V = 50257 is odd: rows start misaligned, exercising the scalar head and tail around 128-bit
// loads; V = 50257 in rows of 50304 is what the trainer runs (GPT-2's padded vocabulary).
INSTANTIATE_TEST_SUITE_P(Shapes, CrossEntropyGpu,
                         ::testing::Values(Shape{1, 1, 1}, Shape{7, 13, 13}, Shape{64, 1024, 1024},
                                           Shape{33, 50257, 50257}, Shape{16, 50304, 50304}, Shape{9, 50257, 50304},
                                           Shape{5, 259, 384}, Shape{3, 13, 16}));

}  // namespace
}  // namespace ferry::test
#else
TEST(CrossEntropyGpu, SkippedInCpuOnlyBuild) { GTEST_SKIP() << "built without CUDA"; }
#endif
