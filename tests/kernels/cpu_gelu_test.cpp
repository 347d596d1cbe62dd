// tests/kernels/cpu_gelu_test.cpp — the CPU GELU in float (tanh through an inlined exp, so its loops
// vectorise) stays within a few float roundings of the double instantiation (libm's tanh), forward
// and backward, on fresh random inputs across the range training sees and in the tails.
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "kernels/gelu.h"
#include "tests/support/support.h"

namespace ferry::test {
namespace {

namespace cpu = ferry::kernels::cpu;

TEST(CpuGelu, FloatMatchesDoubleForwardAndBackward) {
  std::mt19937_64 rng(test_seed());
  std::uniform_real_distribution<double> wide(-12.0, 12.0), narrow(-1e-3, 1e-3), grad(-2.0, 2.0);
  const size_t n = 200003;  // odd: the vector loops' remainders too
  std::vector<double> x(n), g(n);
  for (size_t i = 0; i < n; ++i) {
    x[i] = i % 5 == 0 ? narrow(rng) : wide(rng);
    g[i] = grad(rng);
  }
  const double specials[] = {0.0, -0.0, 1e-30, -1e-30, 30.0, -30.0, 60.0, -60.0, 1e4, -1e4};
  for (size_t k = 0; k < std::size(specials); ++k) x[k] = specials[k];
  std::vector<float> xf(n), gf(n), yf(n), dxf(n);
  for (size_t i = 0; i < n; ++i) xf[i] = float(x[i]), gf[i] = float(g[i]);
  std::vector<double> xd(xf.begin(), xf.end()), gd(gf.begin(), gf.end()), yd(n), dxd(n);
  cpu::gelu_forward(yf.data(), xf.data(), n);
  cpu::gelu_backward(dxf.data(), xf.data(), gf.data(), n);
  cpu::gelu_forward(yd.data(), xd.data(), n);
  cpu::gelu_backward(dxd.data(), xd.data(), gd.data(), n);
  double worst_y = 0, worst_dx = 0;
  for (size_t i = 0; i < n; ++i) {
    ASSERT_TRUE(std::isfinite(yf[i]) && std::isfinite(dxf[i])) << "x = " << xf[i];
    // Scale: |x| for the output (GELU(x) ≈ x or ≈ 0), |g|·max(1,|x|) for the gradient.
    const double ey = std::abs(yf[i] - yd[i]) / std::max(1.0, std::abs(xd[i]));
    const double edx = std::abs(dxf[i] - dxd[i]) / (std::max(1.0, std::abs(gd[i])) * std::max(1.0, std::abs(xd[i])));
    worst_y = std::max(worst_y, ey);
    worst_dx = std::max(worst_dx, edx);
  }
  EXPECT_LT(worst_y, 1e-6);
  EXPECT_LT(worst_dx, 2e-6);
  // The tails: exactly x and 0 for large |x|, and GELU(0) = 0.
  EXPECT_EQ(yf[4], 30.0f);
  EXPECT_EQ(yf[5], -0.0f);
  EXPECT_EQ(yf[0], 0.0f);
}

}  // namespace
}  // namespace ferry::test
