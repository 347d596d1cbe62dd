// tests/emulator/adamw_emu_test.cpp — AdamW and the global gradient norm (kernels/cuda/adamw.cu) on
// the emulator through their real wrappers and launch sizes: the update matches the CPU reference
// per segment (ragged segment boundaries inside the 4-element packs, bf16 and fp32 gradients, the
// ragged tail); the norm and the clip scale match in fp64, through the 16-byte path and, for a
// gradient buffer off the 16-byte grid, the scalar path; both are bitwise the same in any block order.
#include "tests/emulator/emu_test_util.h"
#include "kernels/adamw_norm_share.h"
#include "tests/kernels/adamw_cases.h"

namespace ferry::test {
namespace {

namespace cpu = ferry::kernels::cpu;
namespace gpu = ferry::kernels::cuda;

class AdamWEmu : public EmulatedP<size_t> {};

TEST_P(AdamWEmu, UpdateMatchesCpuReferencePerSegment) {
  check_adamw_update(GetParam(), emu_seed(), [](int run) {
    emu::options().block_order = run == 0 ? emu::BlockOrder::Linear : emu::BlockOrder::Reverse;
  });
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

// The device step's norm (frozen parameters' segments and, under tensor parallelism, other ranks'
// shares are gaps): Σg² over ranges (ragged, with gaps that must not count,
// one empty), then the finish on the sum two ranks' shares make. Fresh random gradients each run.
TEST_F(Emulated, GradNormOverRangesMatchesCpuReferenceAndIsReproducible) {
  std::mt19937_64 rng(emu_seed());
  const size_t n = 5003;
  const auto g = random_bf16_values(n, rng);
  const std::vector<gpu::NormRange> ranges{{3, 1031}, {1031, 1031}, {1500, 2999}, {4096, 5003}};
  double ref = 0;
  for (const auto& r : ranges) ref += cpu::grad_norm_squared(g.data() + r.begin, r.end - r.begin);
  std::vector<float> gf(g.begin(), g.end());

  DeviceBuffer<bf16> d_g(to_bf16(g));
  DeviceBuffer<float> d_gf(gf), d_norm(1), d_clip(1);
  DeviceBuffer<gpu::NormRange> d_ranges(ranges);
  DeviceBuffer<double> d_sq(1);
  DeviceBuffer<unsigned char> ws(gpu::grad_norm_workspace_bytes());
  gpu::grad_norm_squared(d_sq.get(), d_g.get(), d_ranges.get(), int(ranges.size()), ws.get(), ws.size(), nullptr);
  const auto sq1 = d_sq.download();
  FERRY_EXPECT_CLOSE(sq1, std::vector<double>{ref}, kFp32Tolerance);

  d_sq.poison();
  emu::options().block_order = emu::BlockOrder::Shuffled;
  gpu::grad_norm_squared(d_sq.get(), d_g.get(), d_ranges.get(), int(ranges.size()), ws.get(), ws.size(), nullptr);
  EXPECT_TRUE(bitwise_equal(sq1, d_sq.download())) << "the ranges' sum depends on the order the blocks run in";
  emu::options().block_order = emu::BlockOrder::Linear;

  gpu::grad_norm_squared(d_sq.get(), d_gf.get(), d_ranges.get(), int(ranges.size()), ws.get(), ws.size(), nullptr);
  FERRY_EXPECT_CLOSE(d_sq.download(), std::vector<double>{ref}, kFp32Tolerance);

  // The finish on two ranks' summed shares, clipping at half the norm, then without clipping.
  const double other = std::uniform_real_distribution<double>(1.0, 50.0)(rng);
  d_sq.upload({ref + other});
  const double norm = std::sqrt(ref + other);
  const float max_norm = static_cast<float>(norm / 2);
  gpu::grad_norm_finish(d_norm.get(), d_clip.get(), d_sq.get(), max_norm, nullptr);
  FERRY_EXPECT_CLOSE(to_double(d_norm.download()), std::vector<double>{norm}, kFp32Tolerance);
  FERRY_EXPECT_CLOSE(to_double(d_clip.download()), std::vector<double>{max_norm / (norm + 1e-6)}, kFp32Tolerance);
  gpu::grad_norm_finish(d_norm.get(), d_clip.get(), d_sq.get(), 0.0f, nullptr);
  EXPECT_EQ(d_clip.download()[0], 1.0f) << "max_norm 0 means no clipping";

  gpu::grad_norm_squared(d_sq.get(), d_g.get(), d_ranges.get(), 0, ws.get(), ws.size(), nullptr);
  EXPECT_EQ(d_sq.download()[0], 0.0) << "no ranges: nothing counted";
}

INSTANTIATE_TEST_SUITE_P(Sizes, AdamWEmu, ::testing::Values(size_t(1), size_t(13), size_t(4099)));

}  // namespace
}  // namespace ferry::test
