// tests/emulator/layernorm_emu_test.cpp — the CUDA residual layernorm, forward and backward, run on
// the emulator through its real wrappers: matches the CPU reference (kernels/layernorm.h) in fp64
// on the same bf16 inputs at round and ragged sizes (C not a multiple of 256, rows not a multiple
// of the block's 32, 33 blocks of partials so that every reduce chain is used unevenly); dweight
// and dbias accumulate and are bitwise equal whatever the order the blocks run in; no fault.
#include "kernels/layernorm.h"
#include "tests/emulator/emu_test_util.h"

namespace ferry::test {
namespace {

namespace cpu = ferry::kernels::cpu;
namespace gpu = ferry::kernels::cuda;

struct Shape {
  int N, C;
  bool residual;
};

class LayernormEmu : public EmulatedP<Shape> {};

TEST_P(LayernormEmu, ForwardAndBackwardMatchCpuReference) {
  const auto [N, C, residual] = GetParam();
  const size_t NC = size_t(N) * C;
  std::mt19937_64 rng(emu_seed());
  const auto a = random_bf16_values(NC, rng, -2.0, 2.0), b = random_bf16_values(NC, rng);
  const auto w = random_bf16_values(C, rng, 0.5, 1.5), bias = random_bf16_values(C, rng);
  const auto dout = random_bf16_values(NC, rng), dresid = random_bf16_values(NC, rng);
  const auto dw0 = random_bf16_values(C, rng), db0 = random_bf16_values(C, rng);

  std::vector<double> x(NC);
  for (size_t i = 0; i < NC; ++i) x[i] = residual ? bf16_to_float(float_to_bf16(float(a[i] + b[i]))) : a[i];
  std::vector<double> out_ref(NC), mean_ref(N), rstd_ref(N);
  cpu::residual_layernorm_forward<double>(nullptr, out_ref.data(), mean_ref.data(), rstd_ref.data(), x.data(),
                                          nullptr, w.data(), bias.data(), N, C);
  std::vector<double> dinp_ref(NC), dw_ref = dw0, db_ref = db0;
  cpu::layernorm_backward(dinp_ref.data(), dw_ref.data(), db_ref.data(), dout.data(),
                          residual ? dresid.data() : nullptr, x.data(), w.data(), mean_ref.data(), rstd_ref.data(), N,
                          C);

  DeviceBuffer<bf16> d_a(to_bf16(a)), d_b(to_bf16(b)), d_w(to_bf16(w)), d_bias(to_bf16(bias)), d_resid(NC),
      d_out(NC);
  DeviceBuffer<float> d_mean(N), d_rstd(N);
  gpu::residual_layernorm_forward(residual ? d_resid.get() : nullptr, d_out.get(), d_mean.get(), d_rstd.get(),
                                  d_a.get(), residual ? d_b.get() : nullptr, d_w.get(), d_bias.get(), N, C, nullptr);
  FERRY_EXPECT_CLOSE(to_double(d_out.download()), out_ref, kBf16Tolerance);
  FERRY_EXPECT_CLOSE(to_double(d_mean.download()), mean_ref, kFp32Tolerance);
  FERRY_EXPECT_CLOSE(to_double(d_rstd.download()), rstd_ref, kFp32Tolerance);
  if (residual) FERRY_EXPECT_CLOSE(to_double(d_resid.download()), x, 1e-12);

  DeviceBuffer<bf16> d_dout(to_bf16(dout)), d_dresid(to_bf16(dresid)), d_x(to_bf16(x));
  const size_t ws_bytes = gpu::layernorm_backward_workspace_bytes(N, C);
  DeviceBuffer<unsigned char> ws(ws_bytes);
  std::vector<std::vector<bf16>> dws, dbs;
  for (auto order : {emu::BlockOrder::Linear, emu::BlockOrder::Reverse}) {
    emu::options().block_order = order;
    DeviceBuffer<bf16> d_dinp(NC), d_dw(to_bf16(dw0)), d_db(to_bf16(db0));
    gpu::layernorm_backward(d_dinp.get(), d_dw.get(), d_db.get(), d_dout.get(), residual ? d_dresid.get() : nullptr,
                            d_x.get(), d_w.get(), d_mean.get(), d_rstd.get(), N, C, ws.get(), ws_bytes, nullptr);
    FERRY_EXPECT_CLOSE(to_double(d_dinp.download()), dinp_ref, kBf16Tolerance);
    FERRY_EXPECT_CLOSE(to_double(d_dw.download()), dw_ref, kBf16Tolerance);
    FERRY_EXPECT_CLOSE(to_double(d_db.download()), db_ref, kBf16Tolerance);
    dws.push_back(d_dw.download());
    dbs.push_back(d_db.download());
  }
  EXPECT_TRUE(bitwise_equal(dws[0], dws[1]) && bitwise_equal(dbs[0], dbs[1]))
      << "dweight/dbias depend on the order the blocks run in";

  // dinp may alias dresid (the graph reuses the residual gradient's buffer).
  if (residual) {
    gpu::layernorm_backward(d_dresid.get(), nullptr, nullptr, d_dout.get(), d_dresid.get(), d_x.get(), d_w.get(),
                            d_mean.get(), d_rstd.get(), N, C, ws.get(), ws_bytes, nullptr);
    FERRY_EXPECT_CLOSE(to_double(d_dresid.download()), dinp_ref, kBf16Tolerance);
  }
}

// Issue 13, item 6: the backward's dweight/dbias partials live in shared memory and every row
// updates them; laid out channel by channel, lanes 8 floats apart met on the same bank (8-way).
// Every shared access of the kernel — zeroing, the per-row updates, the block's sum over warps —
// must be conflict-free, at a GPT-2 width and a ragged one.
TEST_F(Emulated, LayernormBackwardSharedAccessesAreBankConflictFree) {
  std::mt19937_64 rng(emu_seed());
  for (const int C : {768, 200}) {
    const int N = 40;
    const size_t NC = size_t(N) * C;
    DeviceBuffer<bf16> x(to_bf16(random_bf16_values(NC, rng))), dout(to_bf16(random_bf16_values(NC, rng))),
        w(to_bf16(random_bf16_values(C, rng))), dinp(NC), dw(to_bf16(std::vector<double>(C))),
        db(to_bf16(std::vector<double>(C)));
    DeviceBuffer<float> mean(std::vector<float>(N, 0.1f)), rstd(std::vector<float>(N, 1.5f));
    DeviceBuffer<unsigned char> ws(gpu::layernorm_backward_workspace_bytes(N, C));
    emu::reset();
    gpu::layernorm_backward(dinp.get(), dw.get(), db.get(), dout.get(), nullptr, x.get(), w.get(), mean.get(),
                            rstd.get(), N, C, ws.get(), ws.size(), nullptr);
    const auto runs = emu::launches_of("layernorm_backward_kernel");
    ASSERT_EQ(runs.size(), 1u);
    EXPECT_GT(runs[0].shared_instructions, 0u);
    EXPECT_EQ(runs[0].max_bank_conflict, 1) << "C=" << C << ": " << runs[0].worst_access << " ("
                                            << runs[0].conflicted_instructions << " of " << runs[0].shared_instructions
                                            << " shared instructions conflict)";
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, LayernormEmu,
                         ::testing::Values(Shape{1, 8, false}, Shape{37, 200, true}, Shape{64, 768, true},
                                           Shape{9, 1600, false}, Shape{1030, 64, true}));

}  // namespace
}  // namespace ferry::test
