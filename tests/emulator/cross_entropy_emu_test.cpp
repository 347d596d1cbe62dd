// tests/emulator/cross_entropy_emu_test.cpp — the fused softmax cross-entropy (kernels/cuda/
// cross_entropy.cu) on the emulator with its real launch (1024 threads per row): losses, mean and
// the logits' gradient match the CPU reference, out of place, in place and forward-only, with
// ignored targets; odd V makes rows start off the 16-byte grid (the scalar head and tail around
// the 16-byte loads); V smaller than a block and V larger than eight loads per thread; rows of a
// padded vocabulary (ld > V: the padding holds NaN, never read, and gets a zero gradient); all rows
// ignored gives a zero mean and gradient. No fault.
#include "kernels/cross_entropy.h"
#include "tests/emulator/emu_test_util.h"

namespace ferry::test {
namespace {

namespace cpu = ferry::kernels::cpu;
namespace gpu = ferry::kernels::cuda;

struct Shape {
  int N, V, ld;
};

class CrossEntropyEmu : public EmulatedP<Shape> {};

TEST_P(CrossEntropyEmu, LossesMeanAndGradientMatchCpuReference) {
  const auto [N, V, ld] = GetParam();
  constexpr int32_t kIgnore = -100;
  std::mt19937_64 rng(emu_seed());
  auto logits = random_bf16_values(size_t(N) * ld, rng, -6.0, 6.0);
  for (int n = 0; n < N; ++n)
    for (int v = V; v < ld; ++v) logits[size_t(n) * ld + v] = std::nan("");  // padding: never read
  std::uniform_int_distribution<int32_t> cls(0, V - 1);
  std::vector<int32_t> targets(N);
  for (int n = 0; n < N; ++n) targets[n] = n % 4 == 1 ? kIgnore : cls(rng);
  const double scale = 0.75;

  std::vector<double> losses_ref(N), dlogits_ref(logits.size());
  const double mean_ref = cpu::cross_entropy_forward_backward(losses_ref.data(), dlogits_ref.data(), logits.data(),
                                                              targets.data(), N, V, ld, scale, kIgnore);

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

  for (const auto& rec : emu::launches()) EXPECT_EQ(rec.block[0], 1024u) << rec.kernel << ": the real launch";
}

// Data parallelism's global label count (the fine-tuning losses under DP on CUDA): the batch split
// over two ranks, each half given the count of labelled rows in both; the halves' means sum to the
// whole batch's CPU-reference mean and their gradients are the whole batch's, rows as in one process.
TEST_F(Emulated, CrossEntropyWithAGlobalLabelCountIsItsShareOfTheWholeBatch) {
  const int N = 14, V = 37;
  constexpr int32_t kIgnore = -1;
  std::mt19937_64 rng(emu_seed());
  const auto logits = random_bf16_values(size_t(N) * V, rng, -5.0, 5.0);
  std::uniform_int_distribution<int32_t> cls(0, V - 1);
  std::vector<int32_t> targets(N);
  for (int n = 0; n < N; ++n) targets[n] = (n % 5 == 2 || n < 3) ? kIgnore : cls(rng);  // uneven per half
  const double scale = 0.5;
  std::vector<double> losses_ref(N), dlogits_ref(logits.size());
  const double mean_ref = cpu::cross_entropy_forward_backward(losses_ref.data(), dlogits_ref.data(), logits.data(),
                                                              targets.data(), N, V, V, scale, kIgnore);
  int32_t labelled = 0;
  for (int32_t t : targets) labelled += t != kIgnore;

  DeviceBuffer<int32_t> d_count(std::vector<int32_t>{labelled});
  DeviceBuffer<unsigned char> ws(gpu::cross_entropy_workspace_bytes());
  double mean_sum = 0;
  std::vector<double> dlogits_got;
  for (const auto [begin, rows] : {std::pair{0, 6}, std::pair{6, N - 6}}) {
    const std::vector<double> part(logits.begin() + size_t(begin) * V, logits.begin() + size_t(begin + rows) * V);
    DeviceBuffer<bf16> d_logits(to_bf16(part)), d_dlogits(part.size());
    DeviceBuffer<int32_t> d_targets(std::vector<int32_t>(targets.begin() + begin, targets.begin() + begin + rows));
    DeviceBuffer<float> d_losses(rows), d_mean(1);
    gpu::cross_entropy_forward_backward(d_losses.get(), d_mean.get(), d_dlogits.get(), d_logits.get(),
                                        d_targets.get(), rows, V, V, float(scale), kIgnore, ws.get(), ws.size(),
                                        nullptr, d_count.get());
    FERRY_EXPECT_CLOSE(to_double(d_losses.download()),
                       std::vector<double>(losses_ref.begin() + begin, losses_ref.begin() + begin + rows),
                       kFp32Tolerance);
    mean_sum += to_double(d_mean.download())[0];
    const auto g = to_double(d_dlogits.download());
    dlogits_got.insert(dlogits_got.end(), g.begin(), g.end());
  }
  FERRY_EXPECT_CLOSE(std::vector<double>{mean_sum}, std::vector<double>{mean_ref}, kFp32Tolerance);
  FERRY_EXPECT_CLOSE(dlogits_got, dlogits_ref, kBf16Tolerance);

  // A count of 0 (no rank has a label): zero mean and gradient, no division by zero.
  d_count.upload({0});
  DeviceBuffer<bf16> d_logits(to_bf16(logits)), d_dlogits(logits.size());
  DeviceBuffer<int32_t> d_targets(targets);
  DeviceBuffer<float> d_losses(N), d_mean(1);
  gpu::cross_entropy_forward_backward(d_losses.get(), d_mean.get(), d_dlogits.get(), d_logits.get(), d_targets.get(), N,
                                      V, V, float(scale), kIgnore, ws.get(), ws.size(), nullptr, d_count.get());
  EXPECT_EQ(d_mean.download()[0], 0.0f);
  for (double g : to_double(d_dlogits.download())) EXPECT_EQ(g, 0.0);
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
                                      N, V, V, 1.0f, -1, ws.get(), ws.size(), nullptr);
  EXPECT_EQ(d_mean.download()[0], 0.0f);
  for (float l : d_losses.download()) EXPECT_EQ(l, 0.0f);
  for (double g : to_double(d_dlogits.download())) EXPECT_EQ(g, 0.0);
}

// V = 1001 and 8195 are odd (rows start off the 16-byte grid); 16 and 1 smaller than a block;
// 1001 classes in rows of 1024 and 13 in rows of 16 are padded vocabularies (16-byte aligned rows).
INSTANTIATE_TEST_SUITE_P(Shapes, CrossEntropyEmu,
                         ::testing::Values(Shape{1, 1, 1}, Shape{3, 16, 16}, Shape{7, 13, 13}, Shape{6, 1001, 1001},
                                           Shape{4, 1024, 1024}, Shape{3, 8195, 8195}, Shape{4, 1001, 1024},
                                           Shape{3, 13, 16}));

}  // namespace
}  // namespace ferry::test
