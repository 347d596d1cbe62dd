// tests/kernels/attention_cudnn_gpu_test.cpp — cuDNN's fused attention (kernels/cuda/attention_cudnn.h)
// matches the CPU reference (kernels/attention.h in fp64 on the same bf16 inputs) with the tolerance
// ferry's own kernel is held to: out, lse, and dQ, dK, dV separately; causal and bidirectional,
// key padding, head dims 64 and 128, T not a multiple of the tiles; plans are built once per shape.
// Variants the installed cuDNN or the device cannot run skip with the reason; on a device that can,
// a plan that does not build is a failure, not a skip. The workspace comes poisoned (NaN) and is
// reused across calls: cuDNN's fp32 dQ accumulator lives there and must be zeroed before each
// backward. The graph descriptors are checked without a device in
// tests/kernels/attention_cudnn_test.cpp, the engine's choice of cuDNN in
// tests/engine/attention_choice_test.cpp.
#include "tests/support/support.h"

#if FERRY_WITH_CUDA
#include "base/error.h"
#include "kernels/attention.h"
#include "kernels/cuda/attention_cudnn.h"
#include "tests/kernels/attention_cases.h"
#include "tests/kernels/cuda_test_util.h"

namespace ferry::test {
namespace {

namespace cpu = ferry::kernels::cpu;
namespace gpu = ferry::kernels::cuda;

// ---- cuDNN attention against the CPU reference ----------------------------------------------

#define FERRY_SKIP_WITHOUT_CUDNN_ATTENTION(HS)                                   \
  do {                                                                           \
    FERRY_SKIP_WITHOUT_GPU();                                                    \
    const std::string ferry_why_ = gpu::cudnn_attention_unsupported_reason(HS, true); \
    if (!ferry_why_.empty()) GTEST_SKIP() << ferry_why_;                         \
  } while (0)

class AttentionCudnnGpu : public ::testing::TestWithParam<AttentionCase> {};

TEST_P(AttentionCudnnGpu, ForwardAndBackwardMatchCpuReference) {
  const auto [B, T, NH, HS, causal, padded] = GetParam();
  FERRY_SKIP_WITHOUT_CUDNN_ATTENTION(HS);
  const int C = NH * HS, BT = B * T;
  std::mt19937_64 rng(test_seed());
  const auto qkv = random_bf16_values(size_t(BT) * 3 * C, rng, -2.0, 2.0);
  const auto dout = random_bf16_values(size_t(BT) * C, rng);
  // Every row keeps at least one key: cuDNN defines nothing for a row with none (see the header).
  std::vector<int32_t> lengths(B);
  std::uniform_int_distribution<int32_t> len(1, T);
  for (int b = 0; b < B; ++b) lengths[b] = len(rng);
  const int32_t* lengths_ptr = padded ? lengths.data() : nullptr;

  std::vector<double> out_ref(size_t(BT) * C), lse_ref(size_t(B) * NH * T), dqkv_ref(qkv.size());
  cpu::attention_forward(out_ref.data(), lse_ref.data(), qkv.data(), lengths_ptr, B, T, NH, HS, causal);
  cpu::attention_backward(dqkv_ref.data(), dout.data(), qkv.data(), out_ref.data(), lse_ref.data(), lengths_ptr, B, T,
                          NH, HS, causal);

  gpu::CudnnAttention attention;
  DeviceBuffer<bf16> d_qkv(to_bf16(qkv)), d_out(out_ref.size()), d_dout(to_bf16(dout)), d_dqkv(qkv.size());
  DeviceBuffer<float> d_lse(lse_ref.size());
  DeviceBuffer<int32_t> d_lengths(lengths);
  const int32_t* d_lengths_ptr = padded ? d_lengths.get() : nullptr;
  const size_t fwd_bytes = attention.forward_workspace_bytes(B, T, NH, HS, causal, padded);
  const size_t bwd_bytes = attention.backward_workspace_bytes(B, T, NH, HS, causal, padded);
  DeviceBuffer<unsigned char> ws(std::max(fwd_bytes, bwd_bytes));

  attention.forward(d_out.get(), d_lse.get(), d_qkv.get(), d_lengths_ptr, B, T, NH, HS, causal, ws.get(), ws.size(),
                    nullptr);
  const auto out = d_out.download();
  FERRY_EXPECT_CLOSE(to_double(out), out_ref, kBf16Tolerance);
  // lse is cuDNN's softmax stats: fp32 arithmetic on exact bf16 products.
  FERRY_EXPECT_CLOSE(to_double(d_lse.download()), lse_ref, kFp32Tolerance);

  // The workspace the forward ran in is poisoned again: backward must not read what it did not write.
  // The second backward reuses the first one's workspace, dQ accumulator and all.
  ws.poison();
  for (int call = 1; call <= 2; ++call) {
    SCOPED_TRACE("backward call " + std::to_string(call));
    d_dqkv.poison();
    attention.backward(d_dqkv.get(), d_dout.get(), d_qkv.get(), d_out.get(), d_lse.get(), d_lengths_ptr, B, T, NH, HS,
                       causal, ws.get(), ws.size(), nullptr);
    const auto dqkv = to_double(d_dqkv.download());
    for (int which = 0; which < 3; ++which) {
      SCOPED_TRACE(which == 0 ? "dQ" : which == 1 ? "dK" : "dV");
      FERRY_EXPECT_CLOSE(qkv_part(dqkv, which, BT, C), qkv_part(dqkv_ref, which, BT, C), kBf16Tolerance);
    }
  }

  // A second call of the same shape reuses both plans (and, its own workspace this time, gives
  // the same forward result).
  attention.forward(d_out.get(), d_lse.get(), d_qkv.get(), d_lengths_ptr, B, T, NH, HS, causal, nullptr, 0, nullptr);
  EXPECT_EQ(attention.cached_plans(), 2u);
  EXPECT_TRUE(bitwise_equal(d_out.download(), out)) << "cuDNN forward differs between two calls";
}

INSTANTIATE_TEST_SUITE_P(
    Cases, AttentionCudnnGpu,
    ::testing::ValuesIn(attention_cases()), attention_case_name);

TEST(AttentionCudnnGpuErrors, UnsupportedHeadDimIsAOneLineUserError) {
  FERRY_SKIP_WITHOUT_CUDNN_ATTENTION(0);
  gpu::CudnnAttention attention;
  try {
    attention.forward_workspace_bytes(1, 16, 1, 96, true, false);
    FAIL() << "head dim 96 accepted";
  } catch (const UserError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("head dim 96"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  EXPECT_EQ(attention.cached_plans(), 0u);
}

}  // namespace
}  // namespace ferry::test
#else
TEST(AttentionCudnnGpu, SkippedInCpuOnlyBuild) { GTEST_SKIP() << "built without CUDA"; }
#endif
