// tests/emulator/elementwise_emu_test.cpp — the streaming kernels on the emulator through their
// real wrappers: GELU forward/backward and the bf16/fp32 add (kernels/cuda/gelu.cu: the 16-byte
// path, the scalar tail, and a buffer off the 16-byte grid that must take the scalar path), the
// fp32⇄bf16 conversions (engine/cuda/engine_kernels.cu), token pooling forward/backward in every
// mode over ragged lengths, scale and the weighted loss sum (kernels/cuda/pooling.cu), each against
// its CPU reference.
#include "engine/cuda/engine_kernels.h"
#include "kernels/elementwise.h"
#include "kernels/gelu.h"
#include "tests/emulator/emu_test_util.h"
#include "tests/kernels/pooling_cases.h"

namespace ferry::test {
namespace {

namespace cpu = ferry::kernels::cpu;
namespace gpu = ferry::kernels::cuda;

class GeluEmu : public EmulatedP<size_t> {};

TEST_P(GeluEmu, ForwardBackwardAndAddMatchCpuReferenceAlignedOrNot) {
  std::mt19937_64 rng(emu_seed());
  const size_t n = GetParam();
  // One element more, so that the buffers can also be used from their second element: off the
  // 16-byte grid, which the wrappers must route to the scalar kernel.
  const auto x = random_bf16_values(n + 1, rng, -4.0, 4.0);
  const auto g = random_bf16_values(n + 1, rng);
  DeviceBuffer<bf16> dx_in(to_bf16(x)), dg(to_bf16(g)), dy(n + 1), ddx(n + 1);
  for (size_t shift : {size_t(0), size_t(1)}) {
    SCOPED_TRACE(shift ? "off the 16-byte grid" : "aligned");
    std::vector<double> y_ref(n), dx_ref(n), add_ref(n);
    cpu::gelu_forward(y_ref.data(), x.data() + shift, n);
    cpu::gelu_backward(dx_ref.data(), x.data() + shift, g.data() + shift, n);
    cpu::add(add_ref.data(), x.data() + shift, g.data() + shift, n);
    dy.poison();
    ddx.poison();
    gpu::gelu_forward(dy.get() + shift, dx_in.get() + shift, n, nullptr);
    gpu::gelu_backward(ddx.get() + shift, dx_in.get() + shift, dg.get() + shift, n, nullptr);
    auto y = to_double(dy.download()), dx = to_double(ddx.download());
    FERRY_EXPECT_CLOSE(std::vector<double>(y.begin() + long(shift), y.begin() + long(shift + n)), y_ref, kBf16Tolerance);
    FERRY_EXPECT_CLOSE(std::vector<double>(dx.begin() + long(shift), dx.begin() + long(shift + n)), dx_ref,
                       kBf16Tolerance);
    gpu::add(dy.get() + shift, dx_in.get() + shift, dg.get() + shift, n, nullptr);
    y = to_double(dy.download());
    FERRY_EXPECT_CLOSE(std::vector<double>(y.begin() + long(shift), y.begin() + long(shift + n)), add_ref,
                       kBf16Tolerance);
  }
  // In place: dinp aliases dout.
  std::vector<double> dx_ref(n);
  cpu::gelu_backward(dx_ref.data(), x.data(), g.data(), n);
  gpu::gelu_backward(dg.get(), dx_in.get(), dg.get(), n, nullptr);
  auto in_place = to_double(dg.download());
  in_place.pop_back();
  FERRY_EXPECT_CLOSE(in_place, dx_ref, kBf16Tolerance);

  std::vector<float> af(x.begin(), x.begin() + long(n)), bf(g.begin(), g.begin() + long(n));
  std::vector<double> ref(n);
  cpu::add(ref.data(), x.data(), g.data(), n);
  DeviceBuffer<float> fa(af), fb(bf), fout(n);
  gpu::add(fout.get(), fa.get(), fb.get(), n, nullptr);
  FERRY_EXPECT_CLOSE(to_double(fout.download()), ref, kFp32Tolerance);

  // fp32 → bf16 (the master weights' working copy): round to nearest even, as the CPU does.
  DeviceBuffer<bf16> converted(n);
  ferry::gpu::convert_f32_to_bf16(converted.get(), fa.get(), n, nullptr);
  const auto c = converted.download();
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(c[i].bits, float_to_bf16(af[i]).bits) << "element " << i;
  // bf16 → fp32 (the DP reduce buffer): exact, so the round trip gives the bf16 values back.
  DeviceBuffer<float> widened(n);
  ferry::gpu::convert_bf16_to_f32(widened.get(), converted.get(), n, nullptr);
  const auto w = widened.download();
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(w[i], bf16_to_float(c[i])) << "element " << i;
}

// 8·k exercises only the 16-byte path; odd sizes the scalar tail; 70001 several grid-stride rounds.
INSTANTIATE_TEST_SUITE_P(Sizes, GeluEmu, ::testing::Values(size_t(1), size_t(7), size_t(4096), size_t(70001)));

class PoolTokensEmu : public EmulatedP<PoolCase> {};

TEST_P(PoolTokensEmu, ForwardAndBackwardMatchCpuReferenceOnRaggedLengths) { check_pool_tokens(GetParam(), emu_seed()); }

INSTANTIATE_TEST_SUITE_P(Shapes, PoolTokensEmu,
                         ::testing::Values(PoolCase{4, 7, 24, 0}, PoolCase{4, 7, 24, 1}, PoolCase{4, 7, 24, 2},
                                           PoolCase{6, 33, 130, 2}, PoolCase{5, 9, 300, 1}, PoolCase{3, 1, 5, 2}));

TEST_F(Emulated, ScaleMatchesCpuReferenceInBf16AndFp32InPlaceToo) {
  std::mt19937_64 rng(emu_seed());
  for (size_t n : {size_t(1), size_t(13), size_t(5003)}) {
    const auto x = random_bf16_values(n, rng, -3.0, 3.0);
    const double s = 16.0 / 3.0;
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
}

TEST_F(Emulated, WeightedSumMatchesTheCpuOpsFp64Sum) {
  std::mt19937_64 rng(emu_seed());
  std::uniform_real_distribution<double> u(0.0, 5.0), wd(0.1, 2.0);
  for (int n : {1, 2, gpu::kMaxWeightedTerms}) {
    std::vector<float> l(n);
    std::vector<double> w(n);
    double ref = 0;
    for (int k = 0; k < n; ++k) {
      l[k] = float(u(rng));
      w[k] = wd(rng);
      ref += w[k] * double(l[k]);
    }
    DeviceBuffer<float> terms(l), out(1);
    std::vector<const float*> ptrs;
    for (int k = 0; k < n; ++k) ptrs.push_back(terms.get() + k);
    gpu::weighted_sum(out.get(), ptrs.data(), w.data(), n, nullptr);
    EXPECT_NEAR(out.download()[0], ref, 1e-6 * std::abs(ref)) << n << " terms";
  }
}

}  // namespace
}  // namespace ferry::test
