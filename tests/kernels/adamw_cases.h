// tests/kernels/adamw_cases.h — the AdamW update check both the gpu test (on a device) and the
// emulator test (tests/emulator, on the CPU) run: three segments with ragged boundaries (not
// multiples of the 4-element packs), bf16 gradients then fp32 ones, against the CPU reference per
// segment. Include inside `#if FERRY_WITH_CUDA`.
#pragma once
#include <functional>

#include "kernels/adamw.h"
#include "tests/kernels/cuda_test_util.h"

namespace ferry::test {

// `before_run(k)` runs before update k (0: bf16 gradients, 1: fp32).
inline void check_adamw_update(size_t n, uint64_t seed, const std::function<void(int)>& before_run = {}) {
  namespace cpu = ferry::kernels::cpu;
  namespace gpu = ferry::kernels::cuda;
  std::mt19937_64 rng(seed);
  auto uniform = [&](double lo, double hi) {
    std::uniform_real_distribution<double> d(lo, hi);
    std::vector<float> v(n);
    for (auto& x : v) x = static_cast<float>(d(rng));
    return v;
  };
  const auto master = uniform(-1, 1), m = uniform(-0.1, 0.1), v = uniform(0.0, 0.01);
  const auto grads_d = random_bf16_values(n, rng);
  std::vector<float> grads(grads_d.begin(), grads_d.end());
  // A frozen run (lr_scale 0) between two trained ones: its master, m and v must come back exactly
  // as they went in (moments that decayed there would move a later-unfrozen block).
  std::vector<gpu::AdamWSegment> segs{{0, 1.0f, 0.1f},
                                      {n / 3 + 1, 0.5f, 0.0f},
                                      {n / 2 + 2, 0.0f, 0.0f},
                                      {(2 * n) / 3 + 3, 2.0f, 0.01f}};
  while (segs.size() > 1 && segs.back().begin >= n) segs.pop_back();
  for (size_t s = 1; s < segs.size(); ++s)  // small n: keep begins strictly increasing
    if (segs[s].begin <= segs[s - 1].begin) segs.erase(segs.begin() + long(s--));
  const float lr = 3e-3f, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, grad_scale = 0.5f;
  const int step = 7;

  auto master_ref = master, m_ref = m, v_ref = v;
  for (size_t s = 0; s < segs.size(); ++s) {
    const size_t begin = segs[s].begin, end = s + 1 < segs.size() ? segs[s + 1].begin : n;
    if (segs[s].lr_scale == 0.0f) continue;  // frozen: the reference leaves it as it is
    const cpu::AdamWHyper h{lr * segs[s].lr_scale, beta1, beta2, eps, segs[s].weight_decay, step, grad_scale};
    cpu::adamw_update(master_ref.data() + begin, m_ref.data() + begin, v_ref.data() + begin, grads.data() + begin,
                      end - begin, h);
  }

  DeviceBuffer<float> d_master(master), d_m(m), d_v(v), d_scale(std::vector<float>{grad_scale});
  DeviceBuffer<bf16> d_params(n), d_grads(to_bf16(grads_d));
  DeviceBuffer<float> d_grads_f32(grads);
  DeviceBuffer<gpu::AdamWSegment> d_segs(segs);
  DeviceBuffer<gpu::AdamWStep> d_step(std::vector<gpu::AdamWStep>{{lr, step}});
  if (before_run) before_run(0);
  gpu::adamw_update(d_master.get(), d_params.get(), d_m.get(), d_v.get(), d_grads.get(), n, d_segs.get(),
                    int(segs.size()), d_step.get(), beta1, beta2, eps, d_scale.get(), nullptr);
  FERRY_EXPECT_CLOSE(to_double(d_master.download()), to_double(master_ref), kFp32Tolerance);
  FERRY_EXPECT_CLOSE(to_double(d_m.download()), to_double(m_ref), kFp32Tolerance);
  FERRY_EXPECT_CLOSE(to_double(d_v.download()), to_double(v_ref), kFp32Tolerance);
  FERRY_EXPECT_CLOSE(to_double(d_params.download()), to_double(master_ref), kBf16Tolerance);
  for (size_t s = 0; s < segs.size(); ++s) {  // frozen elements bitwise untouched
    if (segs[s].lr_scale != 0.0f) continue;
    const size_t begin = segs[s].begin, end = s + 1 < segs.size() ? segs[s + 1].begin : n;
    const auto dm = d_master.download(), dmm = d_m.download(), dv = d_v.download();
    for (size_t i = begin; i < end; ++i) {
      EXPECT_EQ(dm[i], master[i]) << "frozen master element " << i << " moved";
      EXPECT_EQ(dmm[i], m[i]) << "frozen first moment " << i << " moved";
      EXPECT_EQ(dv[i], v[i]) << "frozen second moment " << i << " moved";
    }
  }

  // fp32 gradients: same update.
  d_master.upload(master);
  d_m.upload(m);
  d_v.upload(v);
  if (before_run) before_run(1);
  gpu::adamw_update(d_master.get(), static_cast<bf16*>(nullptr), d_m.get(), d_v.get(), d_grads_f32.get(), n,
                    d_segs.get(), int(segs.size()), d_step.get(), beta1, beta2, eps, d_scale.get(), nullptr);
  FERRY_EXPECT_CLOSE(to_double(d_master.download()), to_double(master_ref), kFp32Tolerance);
}

}  // namespace ferry::test
