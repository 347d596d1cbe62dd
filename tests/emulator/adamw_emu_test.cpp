// tests/emulator/adamw_emu_test.cpp — AdamW and the global gradient norm (kernels/cuda/adamw.cu) on
// the emulator through their real wrappers and launch sizes: the update matches the CPU reference
// per segment (ragged segment boundaries inside the 4-element packs, bf16 and fp32 gradients, the
// ragged tail); the norm and the clip scale match in fp64, through the 16-byte path and, for a
// gradient buffer off the 16-byte grid, the scalar path; both are bitwise the same in any block order.
#include "kernels/adamw.h"
#include "tests/emulator/emu_test_util.h"

namespace ferry::test {
namespace {

namespace cpu = ferry::kernels::cpu;
namespace gpu = ferry::kernels::cuda;

template <typename T>
std::vector<T> random_vector(size_t n, std::mt19937_64& rng, double lo, double hi) {
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(d(rng));
  return v;
}

class AdamWEmu : public EmulatedP<size_t> {};

TEST_P(AdamWEmu, UpdateMatchesCpuReferencePerSegment) {
  const size_t n = GetParam();
  std::mt19937_64 rng(emu_seed());
  auto master = random_vector<float>(n, rng, -1, 1), m = random_vector<float>(n, rng, -0.1, 0.1);
  auto v = random_vector<float>(n, rng, 0.0, 0.01);
  const auto grads_d = random_bf16_values(n, rng);
  std::vector<float> grads(grads_d.begin(), grads_d.end());
  std::vector<gpu::AdamWSegment> segs{{0, 1.0f, 0.1f}, {n / 3 + 1, 0.5f, 0.0f}, {(2 * n) / 3 + 3, 2.0f, 0.01f}};
  while (segs.size() > 1 && segs.back().begin >= n) segs.pop_back();
  const float lr = 3e-3f, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, grad_scale = 0.5f;
  const int step = 7;

  auto master_ref = master, m_ref = m, v_ref = v;
  for (size_t s = 0; s < segs.size(); ++s) {
    const size_t begin = segs[s].begin, end = s + 1 < segs.size() ? segs[s + 1].begin : n;
    const cpu::AdamWHyper h{lr * segs[s].lr_scale, beta1, beta2, eps, segs[s].weight_decay, step, grad_scale};
    cpu::adamw_update(master_ref.data() + begin, m_ref.data() + begin, v_ref.data() + begin, grads.data() + begin,
                      end - begin, h);
  }

  DeviceBuffer<float> d_master(master), d_m(m), d_v(v), d_scale(std::vector<float>{grad_scale});
  DeviceBuffer<bf16> d_params(n), d_grads(to_bf16(grads_d));
  DeviceBuffer<float> d_grads_f32(grads);
  DeviceBuffer<gpu::AdamWSegment> d_segs(segs);
  DeviceBuffer<gpu::AdamWStep> d_step(std::vector<gpu::AdamWStep>{{lr, step}});
  gpu::adamw_update(d_master.get(), d_params.get(), d_m.get(), d_v.get(), d_grads.get(), n, d_segs.get(),
                    int(segs.size()), d_step.get(), beta1, beta2, eps, d_scale.get(), nullptr);
  FERRY_EXPECT_CLOSE(to_double(d_master.download()), to_double(master_ref), kFp32Tolerance);
  FERRY_EXPECT_CLOSE(to_double(d_m.download()), to_double(m_ref), kFp32Tolerance);
  FERRY_EXPECT_CLOSE(to_double(d_v.download()), to_double(v_ref), kFp32Tolerance);
  FERRY_EXPECT_CLOSE(to_double(d_params.download()), to_double(master_ref), kBf16Tolerance);

  d_master.upload(master);
  d_m.upload(m);
  d_v.upload(v);
  emu::options().block_order = emu::BlockOrder::Reverse;
  gpu::adamw_update(d_master.get(), static_cast<bf16*>(nullptr), d_m.get(), d_v.get(), d_grads_f32.get(), n,
                    d_segs.get(), int(segs.size()), d_step.get(), beta1, beta2, eps, d_scale.get(), nullptr);
  FERRY_EXPECT_CLOSE(to_double(d_master.download()), to_double(master_ref), kFp32Tolerance);
}

// Each call is the real launch: 1024 blocks of 256 threads. n = 13 is one 16-byte pack and a
// scalar tail; 4099 several packs per block's first threads and a tail of 3.
TEST_F(Emulated, GradNormMatchesCpuReferenceAndIsReproducible) {
  for (const size_t n : {size_t(13), size_t(4099)}) {
    SCOPED_TRACE("n = " + std::to_string(n));
    std::mt19937_64 rng(emu_seed());
    const auto g = random_bf16_values(n + 1, rng);
    const double ref = std::sqrt(cpu::grad_norm_squared(g.data(), n));
    std::vector<float> gf(g.begin(), g.begin() + long(n));

    DeviceBuffer<bf16> d_g(to_bf16(g));
    DeviceBuffer<float> d_gf(gf), d_norm(1), d_clip(1);
    DeviceBuffer<unsigned char> ws(gpu::grad_norm_workspace_bytes());
    const float max_norm = static_cast<float>(ref / 2);  // forces clipping
    gpu::grad_norm(d_norm.get(), d_clip.get(), d_g.get(), n, max_norm, ws.get(), ws.size(), nullptr);
    const auto norm1 = d_norm.download();
    FERRY_EXPECT_CLOSE(to_double(norm1), std::vector<double>{ref}, kFp32Tolerance);
    FERRY_EXPECT_CLOSE(to_double(d_clip.download()), std::vector<double>{max_norm / (ref + 1e-6)}, kFp32Tolerance);

    d_norm.poison();
    emu::options().block_order = emu::BlockOrder::Shuffled;
    gpu::grad_norm(d_norm.get(), d_clip.get(), d_g.get(), n, max_norm, ws.get(), ws.size(), nullptr);
    EXPECT_TRUE(bitwise_equal(norm1, d_norm.download())) << "grad norm depends on the order the blocks run in";
    emu::options().block_order = emu::BlockOrder::Linear;

    gpu::grad_norm(d_norm.get(), d_clip.get(), d_gf.get(), n, 0.0f, ws.get(), ws.size(), nullptr);
    FERRY_EXPECT_CLOSE(to_double(d_norm.download()), std::vector<double>{ref}, kFp32Tolerance);
    EXPECT_EQ(d_clip.download()[0], 1.0f) << "max_norm 0 means no clipping";

    // A gradient buffer 2 bytes off the 16-byte grid takes the scalar path.
    const double ref_shifted = std::sqrt(cpu::grad_norm_squared(g.data() + 1, n));
    gpu::grad_norm(d_norm.get(), d_clip.get(), d_g.get() + 1, n, 0.0f, ws.get(), ws.size(), nullptr);
    FERRY_EXPECT_CLOSE(to_double(d_norm.download()), std::vector<double>{ref_shifted}, kFp32Tolerance);
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, AdamWEmu, ::testing::Values(size_t(1), size_t(13), size_t(4099)));

}  // namespace
}  // namespace ferry::test
