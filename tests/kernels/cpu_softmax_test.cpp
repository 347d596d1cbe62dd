// tests/kernels/cpu_softmax_test.cpp — the CPU softmaxes in float (cross-entropy over a vocabulary,
// attention over keys), whose exponentials and sums run libm-free and vectorised
// (kernels/cpu/fast_exp.h), stay within a few float roundings of the double instantiations (libm,
// left-to-right sums) on fresh random inputs at ragged sizes, in place too.
#include <cmath>
#include <random>
#include <vector>

#include "kernels/attention.h"
#include "kernels/cross_entropy.h"
#include "tests/support/support.h"

namespace ferry::test {
namespace {

namespace cpu = ferry::kernels::cpu;

template <typename To, typename From>
std::vector<To> as(const std::vector<From>& v) {
  return std::vector<To>(v.begin(), v.end());
}

double worst_abs(const std::vector<float>& a, const std::vector<double>& b) {
  double w = 0;
  for (size_t i = 0; i < a.size(); ++i) w = std::max(w, std::abs(double(a[i]) - b[i]));
  return w;
}

TEST(CpuSoftmax, CrossEntropyFloatMatchesDouble) {
  std::mt19937_64 rng(test_seed());
  for (const int V : {4099, 4096, 17, 50257}) {
    const int N = 37;
    std::normal_distribution<double> logit(0.0, 4.0);
    std::vector<float> x(static_cast<size_t>(N) * V);
    for (auto& v : x) v = float(logit(rng));
    x[5] = 60.0f;  // a dominant logit: its row's other exponentials underflow towards 0
    std::vector<int32_t> y(N);
    for (int n = 0; n < N; ++n) y[n] = n % 7 == 3 ? -1 : static_cast<int32_t>(rng() % V);
    y[0] = 5;
    const std::vector<double> xd = as<double>(x);
    std::vector<float> loss_f(N), dx_f(x.size(), 123.0f);
    std::vector<double> loss_d(N), dx_d(x.size());
    const float mean_f = cpu::cross_entropy_forward_backward(loss_f.data(), dx_f.data(), x.data(), y.data(), N, V,
                                                             V, 0.5f, -1);
    const double mean_d = cpu::cross_entropy_forward_backward(loss_d.data(), dx_d.data(), xd.data(), y.data(), N, V,
                                                              V, 0.5, -1);
    EXPECT_NEAR(mean_f, mean_d, 2e-6 * std::max(1.0, std::abs(mean_d))) << "V " << V;
    for (int n = 0; n < N; ++n) EXPECT_NEAR(loss_f[n], loss_d[n], 3e-6 * std::max(1.0, loss_d[n])) << "row " << n;
    // Gradients are ≤ 0.5/32 each; the float log-sum-exp of a row led by a logit of 60 is good to one
    // ulp of 60 (3.8e-6), which its exponentials carry: ~1e-7 absolute, far below any exp error.
    EXPECT_LT(worst_abs(dx_f, dx_d), 5e-7) << "V " << V;
    // In place (the logits' memory receives their gradient): the same bits as out of place.
    std::vector<float> inplace = x, loss_i(N);
    cpu::cross_entropy_forward_backward(loss_i.data(), inplace.data(), inplace.data(), y.data(), N, V, V, 0.5f, -1);
    EXPECT_EQ(inplace, dx_f);
    EXPECT_EQ(loss_i, loss_f);
  }
}

TEST(CpuSoftmax, AttentionFloatMatchesDouble) {
  std::mt19937_64 rng(test_seed() + 1);
  const int B = 2, Tn = 37, NH = 3, HS = 8, C = NH * HS;
  std::normal_distribution<double> w(0.0, 1.5);
  std::vector<float> qkv(static_cast<size_t>(B) * Tn * 3 * C), dout(static_cast<size_t>(B) * Tn * C);
  for (auto& v : qkv) v = float(w(rng));
  for (auto& v : dout) v = float(w(rng));
  const std::vector<int32_t> lengths = {Tn, 29};
  for (const bool causal : {true, false}) {
    for (const int32_t* kl : {static_cast<const int32_t*>(nullptr), lengths.data()}) {
      std::vector<float> out(dout.size(), 7.0f), lse(static_cast<size_t>(B) * NH * Tn, 7.0f), dqkv(qkv.size(), 7.0f);
      cpu::attention_forward(out.data(), lse.data(), qkv.data(), kl, B, Tn, NH, HS, causal);
      cpu::attention_backward(dqkv.data(), dout.data(), qkv.data(), out.data(), lse.data(), kl, B, Tn, NH, HS, causal);
      const std::vector<double> qkv_d = as<double>(qkv), dout_d = as<double>(dout);
      std::vector<double> out_d(out.size()), lse_d(lse.size()), dqkv_d(dqkv.size());
      cpu::attention_forward(out_d.data(), lse_d.data(), qkv_d.data(), kl, B, Tn, NH, HS, causal);
      cpu::attention_backward(dqkv_d.data(), dout_d.data(), qkv_d.data(), out_d.data(), lse_d.data(), kl, B, Tn, NH,
                              HS, causal);
      // Outputs reach ~5 and sum up to 37 terms: a few float roundings of that (an exp error of 1e-4
      // relative would show as ~5e-4).
      EXPECT_LT(worst_abs(out, out_d), 1e-5) << "causal " << causal << " lengths " << (kl != nullptr);
      EXPECT_LT(worst_abs(lse, lse_d), 1e-5) << "causal " << causal << " lengths " << (kl != nullptr);
      EXPECT_LT(worst_abs(dqkv, dqkv_d), 5e-5) << "causal " << causal << " lengths " << (kl != nullptr);
    }
  }
}

}  // namespace
}  // namespace ferry::test
