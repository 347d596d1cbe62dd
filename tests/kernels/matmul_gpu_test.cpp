// tests/kernels/matmul_gpu_test.cpp — the cuBLASLt dense layer matches the CPU reference
// (kernels/matmul.h): forward with bias and with the fused GELU epilogue, backward with dinp, the
// accumulated dweight and dbias, and the fused dGELU; dbias is bitwise reproducible.
#include "tests/support/support.h"

#if FERRY_WITH_CUDA
#include "kernels/gelu.h"
#include "kernels/matmul.h"
#include "tests/kernels/cuda_test_util.h"

namespace ferry::test {
namespace {

namespace cpu = ferry::kernels::cpu;
namespace gpu = ferry::kernels::cuda;

struct Shape {
  int N, IC, OC;
};

class MatmulGpu : public ::testing::TestWithParam<Shape> {};

TEST_P(MatmulGpu, ForwardAndBackwardMatchCpuReference) {
  FERRY_SKIP_WITHOUT_GPU();
  const auto [N, IC, OC] = GetParam();
  std::mt19937_64 rng(test_seed());
  const auto inp = random_bf16_values(size_t(N) * IC, rng), w = random_bf16_values(size_t(OC) * IC, rng, -0.2, 0.2);
  const auto bias = random_bf16_values(OC, rng), dout = random_bf16_values(size_t(N) * OC, rng);
  const auto dw0 = random_bf16_values(size_t(OC) * IC, rng), db0 = random_bf16_values(OC, rng);

  std::vector<double> out_ref(size_t(N) * OC), gelu_ref(out_ref.size());
  cpu::matmul_forward(out_ref.data(), inp.data(), w.data(), bias.data(), N, IC, OC);
  cpu::gelu_forward(gelu_ref.data(), out_ref.data(), out_ref.size());
  std::vector<double> dinp_ref(size_t(N) * IC), dw_ref = dw0, db_ref = db0;
  cpu::matmul_backward(dinp_ref.data(), dw_ref.data(), db_ref.data(), dout.data(), inp.data(), w.data(), N, IC, OC);

  gpu::Matmul mm;
  DeviceBuffer<bf16> d_inp(to_bf16(inp)), d_w(to_bf16(w)), d_bias(to_bf16(bias)), d_out(out_ref.size()),
      d_pre(out_ref.size()), d_dout(to_bf16(dout));
  mm.forward(d_out.get(), nullptr, d_inp.get(), d_w.get(), d_bias.get(), N, IC, OC, nullptr);
  FERRY_EXPECT_CLOSE(to_double(d_out.download()), out_ref, kBf16Tolerance);

  d_out.poison();
  mm.forward(d_out.get(), d_pre.get(), d_inp.get(), d_w.get(), d_bias.get(), N, IC, OC, nullptr);
  FERRY_EXPECT_CLOSE(to_double(d_pre.download()), out_ref, kBf16Tolerance);
  FERRY_EXPECT_CLOSE(to_double(d_out.download()), gelu_ref, kBf16Tolerance);

  std::vector<std::vector<bf16>> dbs;
  for (int run = 0; run < 2; ++run) {
    DeviceBuffer<bf16> d_dinp(dinp_ref.size()), d_dw(to_bf16(dw0)), d_db(to_bf16(db0));
    mm.backward(d_dinp.get(), d_dw.get(), d_db.get(), d_dout.get(), d_inp.get(), d_w.get(), nullptr, N, IC, OC,
                nullptr);
    FERRY_EXPECT_CLOSE(to_double(d_dinp.download()), dinp_ref, kBf16Tolerance);
    FERRY_EXPECT_CLOSE(to_double(d_dw.download()), dw_ref, kBf16Tolerance);
    FERRY_EXPECT_CLOSE(to_double(d_db.download()), db_ref, kBf16Tolerance);
    dbs.push_back(d_db.download());
  }
  EXPECT_TRUE(bitwise_equal(dbs[0], dbs[1])) << "bias gradient is not reproducible";

  // dGELU: this layer's input was gelu(pre); dinp is the gradient with respect to pre.
  const auto pre = random_bf16_values(size_t(N) * IC, rng, -3.0, 3.0);
  std::vector<double> dpre_ref(pre.size());
  cpu::gelu_backward(dpre_ref.data(), pre.data(), dinp_ref.data(), pre.size());
  DeviceBuffer<bf16> d_pre_in(to_bf16(pre)), d_dpre(pre.size());
  mm.backward(d_dpre.get(), nullptr, nullptr, d_dout.get(), d_inp.get(), d_w.get(), d_pre_in.get(), N, IC, OC,
              nullptr);
  FERRY_EXPECT_CLOSE(to_double(d_dpre.download()), dpre_ref, kBf16Tolerance);
}

// GPT-2's attention projection and MLP shapes, plus ragged row counts.
INSTANTIATE_TEST_SUITE_P(Shapes, MatmulGpu,
                         ::testing::Values(Shape{1, 8, 8}, Shape{37, 72, 40}, Shape{256, 768, 2304},
                                           Shape{129, 3072, 768}, Shape{64, 768, 50304}, Shape{33, 24, 9}));

}  // namespace
}  // namespace ferry::test
#else
TEST(MatmulGpu, SkippedInCpuOnlyBuild) { GTEST_SKIP() << "built without CUDA"; }
#endif
