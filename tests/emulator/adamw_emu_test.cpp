// tests/emulator/adamw_emu_test.cpp — AdamW and the global gradient norm (kernels/cuda/adamw.cu) on
// the emulator through their real wrappers and launch sizes: the update matches the CPU reference
// per segment (ragged segment boundaries inside the 4-element packs, bf16 and fp32 gradients, the
// ragged tail); the norm and the clip scale match in fp64, through the 16-byte path and, for a
// gradient buffer off the 16-byte grid, the scalar path; both are bitwise the same in any block order.
#include "tests/emulator/emu_test_util.h"
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

INSTANTIATE_TEST_SUITE_P(Sizes, AdamWEmu, ::testing::Values(size_t(1), size_t(13), size_t(4099)));

}  // namespace
}  // namespace ferry::test
