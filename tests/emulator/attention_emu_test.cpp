// tests/emulator/attention_emu_test.cpp — ferry's flash attention (kernels/cuda/attention_*.cu) and
// the engine's plain small-head attention (engine/cuda/engine_kernels.cu), forward and backward, on
// the emulator through their real wrappers, by the gpu test's check (tests/kernels/attention_cases.h)
// at the same shapes: they match the CPU reference (kernels/attention.h, fp64
// on the same bf16 inputs) for out, lse, dQ, dK and dV; causal and bidirectional, key padding with
// a batch row that sees no key, T of 1, ragged T and T spanning several double-buffered tiles,
// head sizes 64 and 128 (flash) and 8, 16, 32, 48 (plain); the backward is bitwise the same
// whatever order the blocks run in; every ldmatrix and cp.async is conflict-free (the padded row
// stride of attention_tiles.cuh), and nothing faults: no misaligned access, no shared-memory race,
// no cp.async read before its wait.
#include "engine/cuda/engine_kernels.h"
#include "tests/emulator/emu_test_util.h"
#include "tests/kernels/attention_cases.h"

namespace ferry::test {
namespace {

namespace cpu = ferry::kernels::cpu;
namespace gpu = ferry::kernels::cuda;

enum class Kernel { Flash, Plain };

struct Case {
  Kernel kernel;
  AttentionCase shape;
};

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  return std::string(info.param.kernel == Kernel::Flash ? "Flash" : "Plain") +
         attention_case_name(::testing::TestParamInfo<AttentionCase>(info.param.shape, info.index));
}

class AttentionEmu : public EmulatedP<Case> {};

TEST_P(AttentionEmu, ForwardAndBackwardMatchCpuReference) {
  const AttentionKernels kernels =
      GetParam().kernel == Kernel::Flash
          ? flash_attention_kernels()
          : AttentionKernels{[](bf16* out, float* lse, const bf16* qkv, const int32_t* kl, int B, int T, int NH,
                                int HS, bool causal) {
                               ferry::gpu::attention_forward_plain(out, lse, qkv, kl, B, T, NH, HS, causal, nullptr);
                             },
                             ferry::gpu::attention_backward_plain_workspace_bytes,
                             [](bf16* dqkv, const bf16* dout, const bf16* qkv, const bf16* out, const float* lse,
                                const int32_t* kl, int B, int T, int NH, int HS, bool causal, void* ws,
                                size_t ws_bytes) {
                               ferry::gpu::attention_backward_plain(dqkv, dout, qkv, out, lse, kl, B, T, NH, HS,
                                                                    causal, ws, ws_bytes, nullptr);
                             }};
  check_attention(GetParam().shape, emu_seed(), kernels, [](int run) {
    emu::options().block_order = run == 0 ? emu::BlockOrder::Linear : emu::BlockOrder::Shuffled;
  });

  // The padded tile rows (attention_tiles.cuh) put the 8 rows of every ldmatrix, and the 16-byte
  // chunks of every cp.async, on distinct banks.
  if (GetParam().kernel == Kernel::Flash)
    for (const auto& rec : emu::launches())
      if (rec.kernel != "attention_backward_dot_kernel") {
        EXPECT_EQ(rec.max_bank_conflict_ldmatrix, 1) << rec.kernel_full;
        EXPECT_EQ(rec.max_bank_conflict_cp_async, 1) << rec.kernel_full;
      }
}

std::vector<Case> cases() {
  std::vector<Case> r;
  for (const AttentionCase& c : attention_cases()) r.push_back({Kernel::Flash, c});
  for (const AttentionCase& c : std::vector<AttentionCase>{{2, 37, 3, 16, true, true},
                                                           {1, 64, 2, 32, false, false},
                                                           {2, 19, 1, 48, false, true},
                                                           {3, 1, 2, 8, true, false},
                                                           {1, 50, 4, 16, true, false}})
    r.push_back({Kernel::Plain, c});
  return r;
}

INSTANTIATE_TEST_SUITE_P(Cases, AttentionEmu, ::testing::ValuesIn(cases()), case_name);

// Issue 13, item 4: B·NH past 65535 (B = 5462 at 12 heads) must still launch — grid.y stops at
// 65535 — and reach the right heads. The launches are validated whole (dry run) and then only the
// first two and last two blocks of each grid run, against the CPU reference on those rows.
TEST_F(Emulated, FlashAttentionLaunchesPast65535Heads) {
  const int B = 65537, T = 1, NH = 1, HS = 64, C = NH * HS;
  const std::vector<int> sampled{0, 1, B - 2, B - 1};
  std::mt19937_64 rng(emu_seed());
  DeviceBuffer<bf16> d_qkv(size_t(B) * T * 3 * C), d_out(size_t(B) * T * C), d_dout(size_t(B) * T * C),
      d_dqkv(size_t(B) * T * 3 * C);
  DeviceBuffer<float> d_lse(size_t(B) * NH * T);
  const size_t ws_bytes = gpu::attention_backward_workspace_bytes(B, T, NH);
  DeviceBuffer<unsigned char> ws(ws_bytes);

  emu::options().dry_run = true;
  EXPECT_NO_THROW(gpu::attention_forward(d_out.get(), d_lse.get(), d_qkv.get(), nullptr, B, T, NH, HS, true, nullptr));
  EXPECT_NO_THROW(gpu::attention_backward(d_dqkv.get(), d_dout.get(), d_qkv.get(), d_out.get(), d_lse.get(), nullptr,
                                          B, T, NH, HS, true, ws.get(), ws_bytes, nullptr));
  for (const auto& rec : emu::launches()) EXPECT_LE(rec.grid[1], 65535u) << rec.kernel;

  // Inputs (and references) for the sampled batch rows only: the other blocks do not run.
  std::vector<std::vector<double>> qkv_rows, dout_rows;
  for (const int b : sampled) {
    qkv_rows.push_back(random_bf16_values(size_t(T) * 3 * C, rng, -2.0, 2.0));
    dout_rows.push_back(random_bf16_values(size_t(T) * C, rng));
    cudaMemcpy(d_qkv.get() + size_t(b) * T * 3 * C, to_bf16(qkv_rows.back()).data(), size_t(T) * 3 * C * 2,
               cudaMemcpyHostToDevice);
    cudaMemcpy(d_dout.get() + size_t(b) * T * C, to_bf16(dout_rows.back()).data(), size_t(T) * C * 2,
               cudaMemcpyHostToDevice);
  }
  emu::options().dry_run = false;
  emu::options().run_block = [](const unsigned b[3], const unsigned g[3]) {
    const uint64_t linear = (uint64_t(b[2]) * g[1] + b[1]) * g[0] + b[0], total = uint64_t(g[0]) * g[1] * g[2];
    return linear < 2 || linear + 2 >= total;
  };
  gpu::attention_forward(d_out.get(), d_lse.get(), d_qkv.get(), nullptr, B, T, NH, HS, true, nullptr);
  gpu::attention_backward(d_dqkv.get(), d_dout.get(), d_qkv.get(), d_out.get(), d_lse.get(), nullptr, B, T, NH, HS,
                          true, ws.get(), ws_bytes, nullptr);
  const auto out = to_double(d_out.download()), dqkv = to_double(d_dqkv.download());
  for (size_t i = 0; i < sampled.size(); ++i) {
    const int b = sampled[i];
    SCOPED_TRACE("batch row " + std::to_string(b));
    std::vector<double> out_ref(size_t(T) * C), lse_ref(size_t(NH) * T), dqkv_ref(size_t(T) * 3 * C);
    cpu::attention_forward(out_ref.data(), lse_ref.data(), qkv_rows[i].data(), nullptr, 1, T, NH, HS, true);
    cpu::attention_backward(dqkv_ref.data(), dout_rows[i].data(), qkv_rows[i].data(), out_ref.data(), lse_ref.data(),
                            nullptr, 1, T, NH, HS, true);
    FERRY_EXPECT_CLOSE(std::vector<double>(out.begin() + long(b) * T * C, out.begin() + long(b + 1) * T * C), out_ref,
                       kBf16Tolerance);
    FERRY_EXPECT_CLOSE(
        std::vector<double>(dqkv.begin() + long(b) * T * 3 * C, dqkv.begin() + long(b + 1) * T * 3 * C), dqkv_ref,
        kBf16Tolerance);
  }
}

// The plain kernels index rows with an int: B·NH·T past 2^31 must be refused on the host, not
// wrap around on the device.
TEST_F(Emulated, PlainAttentionRefusesMoreRowsThanItsIndexHolds) {
  emu::options().dry_run = true;
  const int B = 1 << 16, T = (1 << 15) + 1, NH = 1, HS = 16;
  EXPECT_THROW(ferry::gpu::attention_forward_plain(nullptr, nullptr, nullptr, nullptr, B, T, NH, HS, true, nullptr),
               gpu::CudaError);
  EXPECT_THROW(ferry::gpu::attention_backward_plain(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, B, T, NH, HS,
                                                    true, nullptr, size_t(1) << 40, nullptr),
               gpu::CudaError);
  EXPECT_NO_THROW(ferry::gpu::attention_forward_plain(nullptr, nullptr, nullptr, nullptr, 4, 1 << 10, NH, HS, true,
                                                      nullptr));
}

}  // namespace
}  // namespace ferry::test
