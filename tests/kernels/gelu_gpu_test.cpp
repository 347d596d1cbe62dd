// tests/kernels/gelu_gpu_test.cpp — CUDA GELU and add match the CPU references (kernels/gelu.h,
// kernels/elementwise.h) on fresh random bf16 inputs, round and ragged sizes, outputs poisoned first.
#include "tests/support/support.h"

#if FERRY_WITH_CUDA
#include "kernels/elementwise.h"
#include "kernels/gelu.h"
#include "tests/kernels/cuda_test_util.h"

namespace ferry::test {
namespace {

namespace cpu = ferry::kernels::cpu;
namespace gpu = ferry::kernels::cuda;

class GeluGpu : public ::testing::TestWithParam<size_t> {};

TEST_P(GeluGpu, ForwardAndBackwardMatchCpuReference) {
  FERRY_SKIP_WITHOUT_GPU();
  std::mt19937_64 rng(test_seed());
  const size_t n = GetParam();
  const auto x = random_bf16_values(n, rng, -4.0, 4.0);
  const auto g = random_bf16_values(n, rng);
  std::vector<double> y_ref(n), dx_ref(n);
  cpu::gelu_forward(y_ref.data(), x.data(), n);
  cpu::gelu_backward(dx_ref.data(), x.data(), g.data(), n);

  DeviceBuffer<bf16> dx_in(to_bf16(x)), dg(to_bf16(g)), dy(n), ddx(n);
  gpu::gelu_forward(dy.get(), dx_in.get(), n, nullptr);
  gpu::gelu_backward(ddx.get(), dx_in.get(), dg.get(), n, nullptr);
  FERRY_EXPECT_CLOSE(to_double(dy.download()), y_ref, kBf16Tolerance);
  FERRY_EXPECT_CLOSE(to_double(ddx.download()), dx_ref, kBf16Tolerance);

  // In place: dinp aliases dout.
  gpu::gelu_backward(dg.get(), dx_in.get(), dg.get(), n, nullptr);
  FERRY_EXPECT_CLOSE(to_double(dg.download()), dx_ref, kBf16Tolerance);
}

TEST_P(GeluGpu, AddMatchesCpuReferenceInBf16AndFp32) {
  FERRY_SKIP_WITHOUT_GPU();
  std::mt19937_64 rng(test_seed());
  const size_t n = GetParam();
  const auto a = random_bf16_values(n, rng), b = random_bf16_values(n, rng);
  std::vector<double> ref(n);
  cpu::add(ref.data(), a.data(), b.data(), n);

  DeviceBuffer<bf16> da(to_bf16(a)), db(to_bf16(b)), dout(n);
  gpu::add(dout.get(), da.get(), db.get(), n, nullptr);
  FERRY_EXPECT_CLOSE(to_double(dout.download()), ref, kBf16Tolerance);

  std::vector<float> af(a.begin(), a.end()), bf(b.begin(), b.end());
  DeviceBuffer<float> fa(af), fb(bf), fout(n);
  gpu::add(fout.get(), fa.get(), fb.get(), n, nullptr);
  FERRY_EXPECT_CLOSE(to_double(fout.download()), ref, kFp32Tolerance);
}

// 8·k exercises only the 128-bit path; odd sizes the scalar tail too.
INSTANTIATE_TEST_SUITE_P(Sizes, GeluGpu, ::testing::Values(size_t(1), size_t(7), size_t(4096), size_t(100003),
                                                          size_t(3 * 1024 * 768)));

}  // namespace
}  // namespace ferry::test
#else
TEST(GeluGpu, SkippedInCpuOnlyBuild) { GTEST_SKIP() << "built without CUDA"; }
#endif
