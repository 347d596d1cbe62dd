// benchmarks/kernels/emulator/kernels_emulation.cpp — drives the emulated CUDA kernels (see
// check_kernels.sh) and compares them with the CPU references in kernels/cpu, in fp64 on the same
// bf16 inputs, with the gpu tests' tolerances. Exit status 1 on any mismatch.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "kernels/adamw.h"
#include "kernels/attention.h"
#include "kernels/cross_entropy.h"
#include "kernels/dtype.h"
#include "kernels/embedding.h"
#include "kernels/gelu.h"
#include "kernels/layernorm.h"
#include "kernels/pooling.h"

using ferry::bf16;

void emu_attention_forward(bf16* out, float* lse, const bf16* qkv, const int32_t* kl, int B, int T, int NH, int HS,
                           bool causal);
void emu_attention_backward(bf16* dqkv, const bf16* dout, const bf16* qkv, const bf16* out, const float* lse,
                            const int32_t* kl, int B, int T, int NH, int HS, bool causal);
void emu_layernorm_forward(bf16* resid, bf16* out, float* mean, float* rstd, const bf16* a, const bf16* b,
                           const bf16* w, const bf16* bias, int N, int C);
void emu_layernorm_backward(bf16* dinp, bf16* dw, bf16* db, const bf16* dout, const bf16* dresid, const bf16* inp,
                            const bf16* w, const float* mean, const float* rstd, int N, int C);
void emu_cross_entropy(float* losses, float* mean, bf16* dlogits, const bf16* logits, const int32_t* targets, int N,
                       int V, float scale, int32_t ignore);
void emu_embedding_forward(bf16* out, const int32_t* tokens, const bf16* wte, const bf16* wpe, int B, int T, int C);
void emu_embedding_backward(bf16* dwte, bf16* dwpe, const bf16* dout, const int32_t* tokens, int B, int T, int C,
                            int V);
template <typename G>
void emu_adamw(float* master, bf16* params, float* m, float* v, const G* grads, size_t n,
               const ferry::kernels::cuda::AdamWSegment* segs, int n_segs, const ferry::kernels::cuda::AdamWStep* step,
               float beta1, float beta2, float eps, const float* grad_scale);
void emu_grad_norm(float* norm, float* clip, const bf16* grads, size_t n, float max_norm);
void emu_gelu(bf16* out, bf16* dinp, const bf16* x, const bf16* dout, size_t n);
void emu_pool_tokens(bf16* y, bf16* dx, const bf16* x, const bf16* dy, const int32_t* lengths, int B, int T, int C,
                     int mode);
void emu_scale(bf16* y, const bf16* x, float* yf, const float* xf, float s, size_t n);
void emu_weighted_sum(float* out, const float* const* terms, const double* weights, int n);

namespace {

constexpr double kBf16 = 1e-2, kFp32 = 1e-5;
std::mt19937_64 rng(42);
bool all_ok = true;

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

std::vector<double> values(size_t n, double lo, double hi) {
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> v(n);
  for (auto& x : v) x = ferry::bf16_to_float(ferry::float_to_bf16(float(u(rng))));
  return v;
}
std::vector<bf16> to_bf16(const std::vector<double>& x) {
  std::vector<bf16> r(x.size());
  for (size_t i = 0; i < x.size(); ++i) r[i] = ferry::float_to_bf16(float(x[i]));
  return r;
}
std::vector<double> from(const std::vector<bf16>& x) {
  std::vector<double> r(x.size());
  for (size_t i = 0; i < x.size(); ++i) r[i] = ferry::bf16_to_float(x[i]);
  return r;
}
std::vector<double> from(const std::vector<float>& x) { return std::vector<double>(x.begin(), x.end()); }
std::vector<bf16> poisoned(size_t n) { return std::vector<bf16>(n, bf16{0xffff}); }

void check(const std::string& what, const std::vector<std::pair<std::string, double>>& errors,
           const std::vector<double>& tolerances) {
  bool ok = true;
  std::printf("%-36s", what.c_str());
  for (size_t i = 0; i < errors.size(); ++i) {
    std::printf(" %s %.2e", errors[i].first.c_str(), errors[i].second);
    ok = ok && errors[i].second < tolerances[i];
  }
  std::printf("  %s\n", ok ? "ok" : "FAIL");
  all_ok = all_ok && ok;
}

void attention(int B, int T, int NH, int HS, bool causal, bool padded) {
  const int C = NH * HS, BT = B * T;
  const auto qkv = values(size_t(BT) * 3 * C, -2, 2), dout = values(size_t(BT) * C, -1, 1);
  std::vector<int32_t> lengths(B, T);
  if (padded) {
    lengths[0] = T / 2 + 3;
    if (B > 1) lengths[1] = 0;
  }
  const int32_t* kl = padded ? lengths.data() : nullptr;
  std::vector<double> out_ref(size_t(BT) * C), lse_ref(size_t(B) * NH * T), dqkv_ref(qkv.size());
  ferry::kernels::cpu::attention_forward(out_ref.data(), lse_ref.data(), qkv.data(), kl, B, T, NH, HS, causal);
  ferry::kernels::cpu::attention_backward(dqkv_ref.data(), dout.data(), qkv.data(), out_ref.data(), lse_ref.data(), kl,
                                          B, T, NH, HS, causal);
  auto out = poisoned(out_ref.size()), dqkv = poisoned(qkv.size());
  std::vector<float> lse(lse_ref.size(), NAN);
  const auto qkv_h = to_bf16(qkv), dout_h = to_bf16(dout);
  emu_attention_forward(out.data(), lse.data(), qkv_h.data(), kl, B, T, NH, HS, causal);
  emu_attention_backward(dqkv.data(), dout_h.data(), qkv_h.data(), out.data(), lse.data(), kl, B, T, NH, HS, causal);
  std::vector<std::pair<std::string, double>> errors{{"out", rel(from(out), out_ref)}, {"lse", rel(from(lse), lse_ref)}};
  const auto got = from(dqkv);
  for (int p = 0; p < 3; ++p) {
    std::vector<double> g, r;
    for (int i = 0; i < BT; ++i)
      for (int k = 0; k < C; ++k) {
        const size_t j = size_t(i) * 3 * C + size_t(p) * C + k;
        g.push_back(got[j]);
        r.push_back(dqkv_ref[j]);
      }
    errors.push_back({p == 0 ? "dQ" : p == 1 ? "dK" : "dV", rel(g, r)});
  }
  check("attention B" + std::to_string(B) + " T" + std::to_string(T) + " H" + std::to_string(NH) + " D" +
            std::to_string(HS) + (causal ? " causal" : " full") + (padded ? " padded" : ""),
        errors, {kBf16, kFp32, kBf16, kBf16, kBf16});
}

void layernorm(int N, int C) {
  const size_t NC = size_t(N) * C;
  const auto a = values(NC, -2, 2), b = values(NC, -1, 1), w = values(C, 0.5, 1.5), bias = values(C, -1, 1);
  const auto dout = values(NC, -1, 1), dresid = values(NC, -1, 1), dw0 = values(C, -1, 1), db0 = values(C, -1, 1);
  std::vector<double> x(NC);
  for (size_t i = 0; i < NC; ++i) x[i] = ferry::bf16_to_float(ferry::float_to_bf16(float(a[i] + b[i])));
  std::vector<double> out_ref(NC), mean_ref(N), rstd_ref(N), dinp_ref(NC), dw_ref = dw0, db_ref = db0;
  ferry::kernels::cpu::residual_layernorm_forward<double>(nullptr, out_ref.data(), mean_ref.data(), rstd_ref.data(),
                                                          x.data(), nullptr, w.data(), bias.data(), N, C);
  ferry::kernels::cpu::layernorm_backward(dinp_ref.data(), dw_ref.data(), db_ref.data(), dout.data(), dresid.data(),
                                          x.data(), w.data(), mean_ref.data(), rstd_ref.data(), N, C);
  const auto a_h = to_bf16(a), b_h = to_bf16(b), w_h = to_bf16(w), bias_h = to_bf16(bias);
  auto resid = poisoned(NC), out = poisoned(NC), dinp = poisoned(NC), dw = to_bf16(dw0), db = to_bf16(db0);
  std::vector<float> mean(N, NAN), rstd(N, NAN);
  emu_layernorm_forward(resid.data(), out.data(), mean.data(), rstd.data(), a_h.data(), b_h.data(), w_h.data(),
                        bias_h.data(), N, C);
  const auto dout_h = to_bf16(dout), dresid_h = to_bf16(dresid);
  emu_layernorm_backward(dinp.data(), dw.data(), db.data(), dout_h.data(), dresid_h.data(), resid.data(), w_h.data(),
                         mean.data(), rstd.data(), N, C);
  check("layernorm N" + std::to_string(N) + " C" + std::to_string(C),
        {{"resid", rel(from(resid), x)},
         {"out", rel(from(out), out_ref)},
         {"mean", rel(from(mean), mean_ref)},
         {"rstd", rel(from(rstd), rstd_ref)},
         {"dinp", rel(from(dinp), dinp_ref)},
         {"dw", rel(from(dw), dw_ref)},
         {"db", rel(from(db), db_ref)}},
        {1e-12, kBf16, kFp32, kFp32, kBf16, kBf16, kBf16});
}

void cross_entropy(int N, int V) {
  const auto logits = values(size_t(N) * V, -6, 6);
  std::uniform_int_distribution<int32_t> cls(0, V - 1);
  std::vector<int32_t> targets(N);
  for (int n = 0; n < N; ++n) targets[n] = n % 4 == 1 ? -100 : cls(rng);
  std::vector<double> losses_ref(N), dlogits_ref(logits.size());
  const double mean_ref = ferry::kernels::cpu::cross_entropy_forward_backward(
      losses_ref.data(), dlogits_ref.data(), logits.data(), targets.data(), N, V, 0.75, -100);
  auto inplace = to_bf16(logits);  // dlogits overwrite logits, as the engine does
  std::vector<float> losses(N, NAN);
  float mean = NAN;
  emu_cross_entropy(losses.data(), &mean, inplace.data(), inplace.data(), targets.data(), N, V, 0.75f, -100);
  check("cross_entropy N" + std::to_string(N) + " V" + std::to_string(V),
        {{"losses", rel(from(losses), losses_ref)},
         {"mean", rel({double(mean)}, {mean_ref})},
         {"dlogits", rel(from(inplace), dlogits_ref)}},
        {kFp32, kFp32, kBf16});
}

void embedding(int B, int T, int C, int V) {
  std::uniform_int_distribution<int32_t> tok(0, V - 1);
  std::vector<int32_t> tokens(size_t(B) * T);
  for (auto& t : tokens) t = tok(rng);
  const auto wte = values(size_t(V) * C, -1, 1), wpe = values(size_t(T) * C, -1, 1);
  const auto dout = values(size_t(B) * T * C, -1, 1), dwte0 = values(size_t(V) * C, -1, 1),
             dwpe0 = values(size_t(T) * C, -1, 1);
  std::vector<double> out_ref(size_t(B) * T * C), dwte_ref = dwte0, dwpe_ref = dwpe0;
  ferry::kernels::cpu::embedding_forward(out_ref.data(), tokens.data(), wte.data(), wpe.data(), B, T, C);
  ferry::kernels::cpu::embedding_backward(dwte_ref.data(), dwpe_ref.data(), dout.data(), tokens.data(), B, T, C, V);
  const auto wte_h = to_bf16(wte), wpe_h = to_bf16(wpe), dout_h = to_bf16(dout);
  auto out = poisoned(out_ref.size()), dwte = to_bf16(dwte0), dwpe = to_bf16(dwpe0);
  emu_embedding_forward(out.data(), tokens.data(), wte_h.data(), wpe_h.data(), B, T, C);
  emu_embedding_backward(dwte.data(), dwpe.data(), dout_h.data(), tokens.data(), B, T, C, V);
  check("embedding B" + std::to_string(B) + " T" + std::to_string(T) + " C" + std::to_string(C) + " V" +
            std::to_string(V),
        {{"out", rel(from(out), out_ref)}, {"dwte", rel(from(dwte), dwte_ref)}, {"dwpe", rel(from(dwpe), dwpe_ref)}},
        {kBf16, kBf16, kBf16});
}

void adamw(size_t n) {
  const auto master0 = values(n, -1, 1), m0 = values(n, -0.1, 0.1), v0 = values(n, 0, 0.01), g = values(n, -1, 1);
  std::vector<ferry::kernels::cuda::AdamWSegment> segs{{0, 1.0f, 0.1f}, {n / 3 + 1, 0.5f, 0.0f}, {(2 * n) / 3 + 3, 2.0f, 0.01f}};
  const float lr = 3e-3f, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, scale = 0.5f;
  const ferry::kernels::cuda::AdamWStep step{lr, 7};
  std::vector<float> master(master0.begin(), master0.end()), m(m0.begin(), m0.end()), v(v0.begin(), v0.end()),
      gf(g.begin(), g.end());
  auto master_ref = master, m_ref = m, v_ref = v;
  for (size_t s = 0; s < segs.size(); ++s) {
    const size_t begin = segs[s].begin, end = s + 1 < segs.size() ? segs[s + 1].begin : n;
    const ferry::kernels::cpu::AdamWHyper h{lr * segs[s].lr_scale, beta1, beta2, eps, segs[s].weight_decay, 7, scale};
    ferry::kernels::cpu::adamw_update(master_ref.data() + begin, m_ref.data() + begin, v_ref.data() + begin,
                                      gf.data() + begin, end - begin, h);
  }
  auto params = poisoned(n);
  const auto g_h = to_bf16(g);
  emu_adamw(master.data(), params.data(), m.data(), v.data(), g_h.data(), n, segs.data(), int(segs.size()), &step,
            beta1, beta2, eps, &scale);
  float norm = NAN, clip = NAN;
  const double norm_ref = std::sqrt(ferry::kernels::cpu::grad_norm_squared(g.data(), n));
  emu_grad_norm(&norm, &clip, g_h.data(), n, float(norm_ref / 2));
  check("adamw + grad_norm n" + std::to_string(n),
        {{"master", rel(from(master), from(master_ref))},
         {"m", rel(from(m), from(m_ref))},
         {"v", rel(from(v), from(v_ref))},
         {"params", rel(from(params), from(master_ref))},
         {"norm", rel({double(norm)}, {norm_ref})},
         {"clip", rel({double(clip)}, {norm_ref / 2 / (norm_ref + 1e-6)})}},
        {kFp32, kFp32, kFp32, kBf16, kFp32, kFp32});
}

void gelu(size_t n) {
  const auto x = values(n, -4, 4), g = values(n, -1, 1);
  std::vector<double> y_ref(n), dx_ref(n);
  ferry::kernels::cpu::gelu_forward(y_ref.data(), x.data(), n);
  ferry::kernels::cpu::gelu_backward(dx_ref.data(), x.data(), g.data(), n);
  const auto x_h = to_bf16(x), g_h = to_bf16(g);
  auto y = poisoned(n), dx = poisoned(n);
  emu_gelu(y.data(), dx.data(), x_h.data(), g_h.data(), n);
  check("gelu n" + std::to_string(n), {{"fwd", rel(from(y), y_ref)}, {"bwd", rel(from(dx), dx_ref)}}, {kBf16, kBf16});
}

// Ragged lengths: full, one token, 0 and T + 3 (both clamped by the contract), then random.
void pool_tokens(int B, int T, int C, int mode) {
  std::uniform_int_distribution<int32_t> len(1, T);
  std::vector<int32_t> lengths(B);
  for (int b = 0; b < B; ++b) lengths[b] = b == 0 ? T : b == 1 ? 1 : b == 2 ? 0 : b == 3 ? T + 3 : len(rng);
  const size_t BTC = size_t(B) * T * C, BC = size_t(B) * C;
  const auto x = values(BTC, -2, 2), dy = values(BC, -1, 1);
  std::vector<double> y_ref(BC), dx_ref(BTC);
  ferry::kernels::cpu::pool_tokens_forward(y_ref.data(), x.data(), lengths.data(), B, T, C, mode);
  ferry::kernels::cpu::pool_tokens_backward(dx_ref.data(), dy.data(), lengths.data(), B, T, C, mode);
  const auto x_h = to_bf16(x), dy_h = to_bf16(dy);
  auto y = poisoned(BC), dx = poisoned(BTC);
  emu_pool_tokens(y.data(), dx.data(), x_h.data(), dy_h.data(), lengths.data(), B, T, C, mode);
  const auto dx_got = from(dx);
  double stray = 0;  // a gradient at a position the row does not pool
  for (size_t i = 0; i < BTC; ++i)
    if (dx_ref[i] == 0.0) stray = std::max(stray, std::isnan(dx_got[i]) ? INFINITY : std::abs(dx_got[i]));
  check("pool_tokens B" + std::to_string(B) + " T" + std::to_string(T) + " C" + std::to_string(C) + " " +
            (mode == 0 ? "first" : mode == 1 ? "last" : "mean"),
        {{"fwd", rel(from(y), y_ref)}, {"bwd", rel(dx_got, dx_ref)}, {"stray", stray}}, {kBf16, kBf16, 1e-300});
}

void scale(size_t n) {
  const auto x = values(n, -3, 3);
  const double s = 16.0 / 3.0;
  std::vector<double> ref(n);
  ferry::kernels::cpu::scale(ref.data(), x.data(), s, n);
  const auto x_h = to_bf16(x);
  auto y = poisoned(n);
  std::vector<float> xf(x.begin(), x.end()), yf(n, NAN);
  emu_scale(y.data(), x_h.data(), yf.data(), xf.data(), float(s), n);
  check("scale n" + std::to_string(n), {{"bf16", rel(from(y), ref)}, {"fp32", rel(from(yf), ref)}}, {kBf16, kFp32});
}

void weighted_sum(int n) {
  const auto l = values(size_t(n), 0, 5), w = values(size_t(n), 0.1, 2);
  std::vector<float> terms(l.begin(), l.end());
  std::vector<const float*> ptrs;
  double ref = 0;  // engine/ops/pooling.cpp's sum_losses
  for (int k = 0; k < n; ++k) {
    ptrs.push_back(&terms[k]);
    ref += w[k] * double(terms[k]);
  }
  float out = NAN;
  emu_weighted_sum(&out, ptrs.data(), w.data(), n);
  check("weighted_sum n" + std::to_string(n), {{"sum", rel({double(out)}, {double(float(ref))})}}, {1e-7});
}

}  // namespace

int main() {
  attention(1, 77, 2, 64, true, false);
  attention(2, 40, 1, 128, true, true);
  attention(2, 70, 1, 64, false, true);
  attention(1, 130, 1, 128, false, false);
  attention(1, 200, 1, 128, true, false);  // several double-buffered tiles on every walk
  layernorm(37, 200);
  layernorm(9, 1600);
  layernorm(1030, 64);  // 33 blocks of partials: every reduce chain used, unevenly
  cross_entropy(6, 1001);
  cross_entropy(3, 16);
  embedding(2, 33, 64, 5);
  embedding(1, 20, 24, 1000);
  adamw(1001);
  adamw(13);
  gelu(1003);
  pool_tokens(6, 9, 40, 0);
  pool_tokens(6, 9, 40, 1);
  pool_tokens(6, 9, 40, 2);
  pool_tokens(5, 17, 300, 2);  // two channel blocks, the second partial
  pool_tokens(4, 1, 7, 1);
  scale(1003);
  weighted_sum(1);
  weighted_sum(3);
  weighted_sum(ferry::kernels::cuda::kMaxWeightedTerms);
  return all_ok ? 0 : 1;
}
