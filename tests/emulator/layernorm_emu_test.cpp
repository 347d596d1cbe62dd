// tests/emulator/layernorm_emu_test.cpp — the CUDA residual layernorm, forward and backward, run on
// the emulator through its real wrappers: the gpu test's check (tests/kernels/layernorm_cases.h),
// the CPU reference in fp64 on the same bf16 inputs, at round and ragged sizes (C not a multiple of
// 256, rows not a multiple of the block's 32, 33 blocks of partials so that every reduce chain is
// used unevenly); dweight and dbias accumulate and are bitwise equal whatever the order the blocks
// run in; the backward is free of bank conflicts; no fault.
#include "tests/emulator/emu_test_util.h"
#include "tests/kernels/layernorm_cases.h"

namespace ferry::test {
namespace {

namespace gpu = ferry::kernels::cuda;

class LayernormEmu : public EmulatedP<LayernormShape> {};

TEST_P(LayernormEmu, ForwardAndBackwardMatchCpuReference) {
  check_layernorm(GetParam(), emu_seed(), [](int run) {
    emu::options().block_order = run == 0 ? emu::BlockOrder::Linear : emu::BlockOrder::Reverse;
  });
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
                         ::testing::Values(LayernormShape{1, 8, false}, LayernormShape{37, 200, true},
                                           LayernormShape{64, 768, true}, LayernormShape{9, 1600, false},
                                           LayernormShape{1030, 64, true}));

}  // namespace
}  // namespace ferry::test
