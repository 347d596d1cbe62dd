// tests/emulator/matmul_bias_emu_test.cpp — Matmul's own kernels (kernels/cuda/matmul.cu: the bias
// gradient's partial column sums and their reduction) on the emulator through Matmul::backward,
// at round and ragged OC (a classification head's 3, a tag set's 9, 770) and N not a multiple of
// the row chunks: dbias accumulates the column sums of dout (CPU reference), bitwise the same in
// any block order, with 16-byte loads of dout whenever OC % 8 == 0. cuBLASLt itself is library code the emulator does not run: a product says so.
#include "kernels/matmul.h"
#include "tests/emulator/emu_test_util.h"

namespace ferry::test {
namespace {

namespace cpu = ferry::kernels::cpu;
namespace gpu = ferry::kernels::cuda;

struct Shape {
  int N, OC;
};

class MatmulBiasEmu : public EmulatedP<Shape> {};

TEST_P(MatmulBiasEmu, BiasGradientAccumulatesColumnSums) {
  const auto [N, OC] = GetParam();
  std::mt19937_64 rng(emu_seed());
  const auto dout = random_bf16_values(size_t(N) * OC, rng), db0 = random_bf16_values(OC, rng);
  std::vector<double> db_ref = db0;
  for (int r = 0; r < N; ++r)
    for (int c = 0; c < OC; ++c) db_ref[c] += dout[size_t(r) * OC + c];

  gpu::Matmul mm;
  DeviceBuffer<bf16> d_dout(to_bf16(dout));
  std::vector<std::vector<bf16>> runs;
  for (auto order : {emu::BlockOrder::Linear, emu::BlockOrder::Reverse}) {
    emu::options().block_order = order;
    DeviceBuffer<bf16> d_db(to_bf16(db0));
    mm.backward(nullptr, nullptr, d_db.get(), d_dout.get(), nullptr, nullptr, nullptr, N, 16, OC, nullptr);
    runs.push_back(d_db.download());
    FERRY_EXPECT_CLOSE(to_double(runs.back()), db_ref, kBf16Tolerance);
  }
  EXPECT_TRUE(bitwise_equal(runs[0], runs[1])) << "the bias gradient depends on the order the blocks run in";

  // Issue 13, item 8: dout is read 16 bytes at a time whenever its rows allow it (OC % 8 == 0,
  // 16-byte aligned); a ragged OC puts rows off the 16-byte grid and takes the scalar kernel.
  uint64_t loads16 = 0, loads2 = 0;
  for (const auto& rec : emu::launches())
    if (rec.kernel.rfind("bias_grad_partial", 0) == 0) {
      loads16 += rec.global_loads[4];
      loads2 += rec.global_loads[1];
    }
  if (OC % 8 == 0) {
    EXPECT_EQ(loads2, 0u) << "2-byte loads of dout at OC=" << OC;
    EXPECT_GE(loads16, 2u * size_t(N) * OC / 8) << "every dout element in a 16-byte load, OC=" << OC;
  } else {
    EXPECT_EQ(loads16, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, MatmulBiasEmu,
                         ::testing::Values(Shape{1, 1}, Shape{37, 3}, Shape{100, 9}, Shape{257, 64}, Shape{130, 768},
                                           Shape{67, 770}, Shape{3, 8}, Shape{1000, 24}));

TEST_F(Emulated, MatmulProductsAreNotEmulated) {
  gpu::Matmul mm;
  DeviceBuffer<bf16> a(64), w(64), out(64);
  EXPECT_THROW(mm.forward(out.get(), nullptr, a.get(), w.get(), nullptr, 8, 8, 8, nullptr), gpu::CudaError);
}

}  // namespace
}  // namespace ferry::test
