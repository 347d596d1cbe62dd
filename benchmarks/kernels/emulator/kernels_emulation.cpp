// benchmarks/kernels/emulator/attention_emulation.cpp — drives the emulated CUDA attention kernels
// (see check_attention.sh) and compares them with kernels/cpu/attention.cpp in fp64 on the same
// bf16 inputs. Exit status 1 when any relative error exceeds the gpu tests' tolerances.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "kernels/attention.h"
#include "kernels/dtype.h"

void emu_attention_forward(ferry::bf16* out, float* lse, const ferry::bf16* qkv, const int32_t* kl, int B, int T,
                           int NH, int HS, bool causal);
void emu_attention_backward(ferry::bf16* dqkv, const ferry::bf16* dout, const ferry::bf16* qkv, const ferry::bf16* out,
                            const float* lse, const int32_t* kl, int B, int T, int NH, int HS, bool causal);

namespace {

double rel(const std::vector<double>& got, const std::vector<double>& ref) {
  double d = 0, n = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(got[i]) || std::isnan(ref[i])) return INFINITY;
    if (std::isinf(got[i]) || std::isinf(ref[i])) {
      if (got[i] != ref[i]) return INFINITY;
      continue;
    }
    d += (got[i] - ref[i]) * (got[i] - ref[i]);
    n += ref[i] * ref[i];
  }
  return n > 0 ? std::sqrt(d / n) : std::sqrt(d);
}

struct Case {
  int B, T, NH, HS;
  bool causal, padded;
};

}  // namespace

int main() {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> u(-2, 2);
  bool ok = true;
  for (const Case c : {Case{1, 77, 2, 64, true, false}, Case{2, 40, 1, 128, true, true},
                       Case{2, 70, 1, 64, false, true}, Case{1, 130, 1, 128, false, false}}) {
    const int C = c.NH * c.HS, BT = c.B * c.T;
    std::vector<double> qkv(size_t(BT) * 3 * C), dout(size_t(BT) * C);
    for (auto& x : qkv) x = ferry::bf16_to_float(ferry::float_to_bf16(float(u(rng))));
    for (auto& x : dout) x = ferry::bf16_to_float(ferry::float_to_bf16(float(u(rng) / 2)));
    std::vector<int32_t> lengths(c.B, c.T);
    if (c.padded) {
      lengths[0] = c.T / 2 + 3;
      if (c.B > 1) lengths[1] = 0;
    }
    const int32_t* kl = c.padded ? lengths.data() : nullptr;
    std::vector<double> out_ref(size_t(BT) * C), lse_ref(size_t(c.B) * c.NH * c.T), dqkv_ref(qkv.size());
    ferry::kernels::cpu::attention_forward(out_ref.data(), lse_ref.data(), qkv.data(), kl, c.B, c.T, c.NH, c.HS,
                                           c.causal);
    ferry::kernels::cpu::attention_backward(dqkv_ref.data(), dout.data(), qkv.data(), out_ref.data(), lse_ref.data(),
                                            kl, c.B, c.T, c.NH, c.HS, c.causal);

    std::vector<ferry::bf16> qkv_h(qkv.size()), dout_h(dout.size()), out_h(out_ref.size(), {0xffff}),
        dqkv_h(qkv.size(), {0xffff});
    for (size_t i = 0; i < qkv.size(); ++i) qkv_h[i] = ferry::float_to_bf16(float(qkv[i]));
    for (size_t i = 0; i < dout.size(); ++i) dout_h[i] = ferry::float_to_bf16(float(dout[i]));
    std::vector<float> lse_h(lse_ref.size(), NAN);
    emu_attention_forward(out_h.data(), lse_h.data(), qkv_h.data(), kl, c.B, c.T, c.NH, c.HS, c.causal);
    emu_attention_backward(dqkv_h.data(), dout_h.data(), qkv_h.data(), out_h.data(), lse_h.data(), kl, c.B, c.T, c.NH,
                           c.HS, c.causal);

    std::vector<double> out(out_h.size()), lse(lse_h.begin(), lse_h.end());
    for (size_t i = 0; i < out.size(); ++i) out[i] = ferry::bf16_to_float(out_h[i]);
    double e_part[3];
    for (int p = 0; p < 3; ++p) {
      std::vector<double> got, ref;
      for (int i = 0; i < BT; ++i)
        for (int k = 0; k < C; ++k) {
          const size_t j = size_t(i) * 3 * C + size_t(p) * C + k;
          got.push_back(ferry::bf16_to_float(dqkv_h[j]));
          ref.push_back(dqkv_ref[j]);
        }
      e_part[p] = rel(got, ref);
    }
    const double e_out = rel(out, out_ref), e_lse = rel(lse, lse_ref);
    const bool pass = e_out < 1e-2 && e_lse < 1e-5 && e_part[0] < 1e-2 && e_part[1] < 1e-2 && e_part[2] < 1e-2;
    ok = ok && pass;
    std::printf("B%d T%d H%d D%d %s%s: out %.2e lse %.2e dQ %.2e dK %.2e dV %.2e %s\n", c.B, c.T, c.NH, c.HS,
                c.causal ? "causal" : "full", c.padded ? " padded" : "", e_out, e_lse, e_part[0], e_part[1],
                e_part[2], pass ? "ok" : "FAIL");
  }
  return ok ? 0 : 1;
}
