// tests/emulator/cross_entropy_emu_test.cpp — the fused softmax cross-entropy (kernels/cuda/
// cross_entropy.cu) on the emulator with its real launch (1024 threads per row): losses, mean and
// the logits' gradient match the CPU reference, out of place, in place and forward-only, with
// ignored targets; odd V makes rows start off the 16-byte grid (the scalar head and tail around
// the 16-byte loads); V smaller than a block and V larger than eight loads per thread; all rows
// ignored gives a zero mean and gradient. No fault.
#include "kernels/cross_entropy.h"
#include "tests/emulator/emu_test_util.h"

namespace ferry::test {
namespace {

namespace cpu = ferry::kernels::cpu;
namespace gpu = ferry::kernels::cuda;

struct Shape {
  int N, V;
};

class CrossEntropyEmu : public EmulatedP<Shape> {};

TEST_P(CrossEntropyEmu, LossesMeanAndGradientMatchCpuReference) {
  const auto [N, V] = GetParam();
  constexpr int32_t kIgnore = -100;
  std::mt19937_64 rng(emu_seed());
  const auto logits = random_bf16_values(size_t(N) * V, rng, -6.0, 6.0);
  std::uniform_int_distribution<int32_t> cls(0, V - 1);
  std::vector<int32_t> targets(N);
  for (int n = 0; n < N; ++n) targets[n] = n % 4 == 1 ? kIgnore : cls(rng);
  const double scale = 0.75;

  std::vector<double> losses_ref(N), dlogits_ref(logits.size());
  const double mean_ref = cpu::cross_entropy_forward_backward(losses_ref.data(), dlogits_ref.data(), logits.data(),
                                                              targets.data(), N, V, scale, kIgnore);

  DeviceBuffer<bf16> d_logits(to_bf16(logits)), d_dlogits(logits.size());
  DeviceBuffer<int32_t> d_targets(targets);
  DeviceBuffer<float> d_losses(N), d_mean(1);
  DeviceBuffer<unsigned char> ws(gpu::cross_entropy_workspace_bytes());
  gpu::cross_entropy_forward_backward(d_losses.get(), d_mean.get(), d_dlogits.get(), d_logits.get(), d_targets.get(),
                                      N, V, float(scale), kIgnore, ws.get(), ws.size(), nullptr);
  FERRY_EXPECT_CLOSE(to_double(d_losses.download()), losses_ref, kFp32Tolerance);
  FERRY_EXPECT_CLOSE(to_double(d_mean.download()), std::vector<double>{mean_ref}, kFp32Tolerance);
  FERRY_EXPECT_CLOSE(to_double(d_dlogits.download()), dlogits_ref, kBf16Tolerance);

  // In place: dlogits overwrites logits.
  d_losses.poison();
  gpu::cross_entropy_forward_backward(d_losses.get(), d_mean.get(), d_logits.get(), d_logits.get(), d_targets.get(),
                                      N, V, float(scale), kIgnore, ws.get(), ws.size(), nullptr);
  FERRY_EXPECT_CLOSE(to_double(d_losses.download()), losses_ref, kFp32Tolerance);
  FERRY_EXPECT_CLOSE(to_double(d_logits.download()), dlogits_ref, kBf16Tolerance);

  // Forward only (evaluation): no dlogits.
  d_losses.poison();
  d_mean.poison();
  d_logits.upload(to_bf16(logits));
  gpu::cross_entropy_forward_backward(d_losses.get(), d_mean.get(), nullptr, d_logits.get(), d_targets.get(), N, V,
                                      float(scale), kIgnore, ws.get(), ws.size(), nullptr);
  FERRY_EXPECT_CLOSE(to_double(d_losses.download()), losses_ref, kFp32Tolerance);
  FERRY_EXPECT_CLOSE(to_double(d_mean.download()), std::vector<double>{mean_ref}, kFp32Tolerance);

  for (const auto& rec : emu::launches()) EXPECT_EQ(rec.block[0], 1024u) << rec.kernel << ": the real launch";
}

TEST_F(Emulated, CrossEntropyAllRowsIgnoredGiveZeroMeanAndZeroGradient) {
  const int N = 5, V = 33;
  std::mt19937_64 rng(emu_seed());
  const auto logits = random_bf16_values(size_t(N) * V, rng);
  DeviceBuffer<bf16> d_logits(to_bf16(logits)), d_dlogits(logits.size());
  DeviceBuffer<int32_t> d_targets(std::vector<int32_t>(N, -1));
  DeviceBuffer<float> d_losses(N), d_mean(1);
  DeviceBuffer<unsigned char> ws(gpu::cross_entropy_workspace_bytes());
  gpu::cross_entropy_forward_backward(d_losses.get(), d_mean.get(), d_dlogits.get(), d_logits.get(), d_targets.get(),
                                      N, V, 1.0f, -1, ws.get(), ws.size(), nullptr);
  EXPECT_EQ(d_mean.download()[0], 0.0f);
  for (float l : d_losses.download()) EXPECT_EQ(l, 0.0f);
  for (double g : to_double(d_dlogits.download())) EXPECT_EQ(g, 0.0);
}

// V = 1001 and 8195 are odd (rows start off the 16-byte grid); 16 and 1 smaller than a block.
INSTANTIATE_TEST_SUITE_P(Shapes, CrossEntropyEmu,
                         ::testing::Values(Shape{1, 1}, Shape{3, 16}, Shape{7, 13}, Shape{6, 1001}, Shape{4, 1024},
                                           Shape{3, 8195}));

}  // namespace
}  // namespace ferry::test
