// tests/kernels/attention_gpu_test.cpp — the flash-style CUDA attention matches the CPU reference
// (kernels/attention.h, computed in fp64 on the same bf16 inputs): out, lse, and dQ, dK, dV
// separately; causal and bidirectional, key-padding masks (including a row with no keys), head
// dims 64 and 128, T not a multiple of the tiles; the backward is bitwise reproducible.
#include "tests/support/support.h"

#if FERRY_WITH_CUDA
#include "kernels/attention.h"
#include "tests/kernels/attention_cases.h"
#include "tests/kernels/cuda_test_util.h"

namespace ferry::test {
namespace {

namespace cpu = ferry::kernels::cpu;
namespace gpu = ferry::kernels::cuda;

class AttentionGpu : public ::testing::TestWithParam<AttentionCase> {};

TEST_P(AttentionGpu, ForwardAndBackwardMatchCpuReference) {
  FERRY_SKIP_WITHOUT_GPU();
  const auto [B, T, NH, HS, causal, padded] = GetParam();
  const int C = NH * HS, BT = B * T;
  std::mt19937_64 rng(test_seed());
  const auto qkv = random_bf16_values(size_t(BT) * 3 * C, rng, -2.0, 2.0);
  const auto dout = random_bf16_values(size_t(BT) * C, rng);
  std::vector<int32_t> lengths(B);
  std::uniform_int_distribution<int32_t> len(1, T);
  for (int b = 0; b < B; ++b) lengths[b] = len(rng);
  if (padded && B > 1) lengths[1] = 0;  // a batch row with no visible key at all
  const int32_t* lengths_ptr = padded ? lengths.data() : nullptr;

  std::vector<double> out_ref(size_t(BT) * C), lse_ref(size_t(B) * NH * T), dqkv_ref(qkv.size());
  cpu::attention_forward(out_ref.data(), lse_ref.data(), qkv.data(), lengths_ptr, B, T, NH, HS, causal);
  cpu::attention_backward(dqkv_ref.data(), dout.data(), qkv.data(), out_ref.data(), lse_ref.data(), lengths_ptr, B, T,
                          NH, HS, causal);

  DeviceBuffer<bf16> d_qkv(to_bf16(qkv)), d_out(out_ref.size()), d_dout(to_bf16(dout));
  DeviceBuffer<float> d_lse(lse_ref.size());
  DeviceBuffer<int32_t> d_lengths(lengths);
  const int32_t* d_lengths_ptr = padded ? d_lengths.get() : nullptr;
  gpu::attention_forward(d_out.get(), d_lse.get(), d_qkv.get(), d_lengths_ptr, B, T, NH, HS, causal, nullptr);
  FERRY_EXPECT_CLOSE(to_double(d_out.download()), out_ref, kBf16Tolerance);
  // lse comes from fp32 arithmetic on exact bf16 products.
  FERRY_EXPECT_CLOSE(to_double(d_lse.download()), lse_ref, kFp32Tolerance);

  const size_t ws_bytes = gpu::attention_backward_workspace_bytes(B, T, NH);
  DeviceBuffer<unsigned char> ws(ws_bytes);
  std::vector<std::vector<bf16>> runs;
  for (int run = 0; run < 2; ++run) {
    DeviceBuffer<bf16> d_dqkv(qkv.size());
    gpu::attention_backward(d_dqkv.get(), d_dout.get(), d_qkv.get(), d_out.get(), d_lse.get(), d_lengths_ptr, B, T,
                            NH, HS, causal, ws.get(), ws_bytes, nullptr);
    runs.push_back(d_dqkv.download());
  }
  const auto dqkv = to_double(runs[0]);
  for (int which = 0; which < 3; ++which) {
    SCOPED_TRACE(which == 0 ? "dQ" : which == 1 ? "dK" : "dV");
    FERRY_EXPECT_CLOSE(qkv_part(dqkv, which, BT, C), qkv_part(dqkv_ref, which, BT, C), kBf16Tolerance);
  }
  EXPECT_TRUE(bitwise_equal(runs[0], runs[1])) << "attention backward is not reproducible";
}

INSTANTIATE_TEST_SUITE_P(
    Cases, AttentionGpu,
    ::testing::ValuesIn(attention_cases()), attention_case_name);

}  // namespace
}  // namespace ferry::test
#else
TEST(AttentionGpu, SkippedInCpuOnlyBuild) { GTEST_SKIP() << "built without CUDA"; }
#endif
