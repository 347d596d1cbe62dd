// benchmarks/cpu_kernels_bench.cpp — throughput of the CPU reference kernels that dominate a CPU
// training step (the matmuls, the vocabulary head above all). Median of repeated runs; GFLOP/s.
// Usage: cpu_kernels_bench [reps]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "engine/random.h"
#include "kernels/attention.h"
#include "kernels/matmul.h"

namespace {

template <typename F>
double median_ms(int reps, F&& f) {
  std::vector<double> t;
  f();  // warm-up
  for (int r = 0; r < reps; ++r) {
    const auto a = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

std::vector<float> random(size_t n, ferry::Rng& rng) {
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(rng.uniform() - 0.5);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::atoi(argv[1]) : 5;
  ferry::Rng rng(1);
  struct Shape {
    const char* name;
    int N, IC, OC;
  };
  const Shape shapes[] = {{"qkv 1024x128->384", 1024, 128, 384},
                          {"fc 1024x128->512", 1024, 128, 512},
                          {"fc2 1024x512->128", 1024, 512, 128},
                          {"head 1024x128->50257", 1024, 128, 50257}};
  std::printf("%-24s %12s %12s %12s\n", "matmul", "fwd GFLOP/s", "bwd GFLOP/s", "fwd ms");
  for (const Shape& s : shapes) {
    auto x = random(size_t(s.N) * s.IC, rng), w = random(size_t(s.OC) * s.IC, rng), b = random(s.OC, rng);
    std::vector<float> y(size_t(s.N) * s.OC), dx(x.size()), dw(w.size()), db(b.size());
    const double flops = 2.0 * s.N * s.IC * s.OC;
    const double fwd = median_ms(reps, [&] {
      ferry::kernels::cpu::matmul_forward(y.data(), x.data(), w.data(), b.data(), s.N, s.IC, s.OC);
    });
    const double bwd = median_ms(reps, [&] {
      ferry::kernels::cpu::matmul_backward(dx.data(), dw.data(), db.data(), y.data(), x.data(), w.data(), s.N, s.IC,
                                           s.OC);
    });
    std::printf("%-24s %12.1f %12.1f %12.2f\n", s.name, flops / fwd / 1e6, 2 * flops / bwd / 1e6, fwd);
  }
  {
    const int B = 8, T = 128, NH = 4, HS = 32;
    auto qkv = random(size_t(B) * T * 3 * NH * HS, rng);
    std::vector<float> out(size_t(B) * T * NH * HS), lse(size_t(B) * NH * T), dqkv(qkv.size());
    const double flops = 4.0 * B * NH * double(T) * T * HS / 2;
    const double fwd = median_ms(reps, [&] {
      ferry::kernels::cpu::attention_forward(out.data(), lse.data(), qkv.data(), nullptr, B, T, NH, HS, true);
    });
    const double bwd = median_ms(reps, [&] {
      ferry::kernels::cpu::attention_backward(dqkv.data(), out.data(), qkv.data(), out.data(), lse.data(), nullptr,
                                              B, T, NH, HS, true);
    });
    std::printf("%-24s %12.1f %12.1f %12.2f\n", "attention B8 T128 C128", flops / fwd / 1e6, 2.5 * flops / bwd / 1e6,
                fwd);
  }
  return 0;
}
