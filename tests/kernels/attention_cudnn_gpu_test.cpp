// tests/kernels/attention_cudnn_gpu_test.cpp — cuDNN's fused attention (kernels/cuda/attention_cudnn.h)
// matches the CPU reference (kernels/attention.h in fp64 on the same bf16 inputs) with the tolerance
// ferry's own kernel is held to: out, lse, and dQ, dK, dV separately; causal and bidirectional,
// key padding, head dims 64 and 128, T not a multiple of the tiles; plans are built once per shape.
// Variants the installed cuDNN or the device cannot run skip with the reason; on a device that can,
// a plan that does not build is a failure, not a skip. The `--attention` choice and the benchmark's
// verdict file are checked without a device.
#include "tests/support/support.h"

#if FERRY_WITH_CUDA
#include <fstream>

#include "engine/error.h"
#include "kernels/attention.h"
#include "kernels/cuda/attention_cudnn.h"
#include "tests/kernels/attention_cases.h"
#include "tests/kernels/cuda_test_util.h"

namespace ferry::test {
namespace {

namespace cpu = ferry::kernels::cpu;
namespace gpu = ferry::kernels::cuda;

// ---- the choice, no device needed -------------------------------------------------------------

TEST(AttentionChoice, UnknownBackendNameIsAUserErrorNamingTheFlag) {
  try {
    gpu::choose_attention("flash");
    FAIL() << "no error";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("--attention"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("flash"), std::string::npos) << e.what();
  }
}

TEST(AttentionChoice, FerryIsAlwaysAvailable) {
  EXPECT_EQ(gpu::choose_attention("ferry"), gpu::AttentionBackend::Ferry);
}

TEST(AttentionChoice, CudnnEitherRunsHereOrSaysWhyNot) {
  const std::string why = gpu::cudnn_attention_unsupported_reason(0, true);
  if (why.empty()) {
    EXPECT_EQ(gpu::choose_attention("cudnn"), gpu::AttentionBackend::Cudnn);
  } else {
    try {
      gpu::choose_attention("cudnn");
      FAIL() << "no error although: " << why;
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("--attention ferry"), std::string::npos) << e.what();
    }
  }
  if (!gpu::built_with_cudnn()) EXPECT_NE(why.find("without cuDNN"), std::string::npos) << why;
}

TEST(AttentionChoice, VerdictHoldsOnlyForItsDeviceAndCudnnVersion) {
  TempDir dir;
  const std::string path = (dir.path() / "choice.json").string();
  gpu::write_attention_choice(path, "NVIDIA H200", 91400, 2.0, 1.5);
  EXPECT_EQ(gpu::read_attention_choice(path, "NVIDIA H200", 91400), gpu::AttentionBackend::Cudnn);
  EXPECT_EQ(gpu::read_attention_choice(path, "NVIDIA H100 80GB HBM3", 91400), gpu::AttentionBackend::Ferry);
  EXPECT_EQ(gpu::read_attention_choice(path, "NVIDIA H200", 91900), gpu::AttentionBackend::Ferry);
  gpu::write_attention_choice(path, "NVIDIA H200", 91400, 1.0, 1.5);
  EXPECT_EQ(gpu::read_attention_choice(path, "NVIDIA H200", 91400), gpu::AttentionBackend::Ferry);
  // cuDNN not measured (0 ms) is never "faster".
  gpu::write_attention_choice(path, "NVIDIA H200", 91400, 1.0, 0.0);
  EXPECT_EQ(gpu::read_attention_choice(path, "NVIDIA H200", 91400), gpu::AttentionBackend::Ferry);
  EXPECT_EQ(gpu::read_attention_choice((dir.path() / "absent.json").string(), "NVIDIA H200", 91400),
            gpu::AttentionBackend::Ferry);
  std::ofstream(path) << "not json";
  EXPECT_EQ(gpu::read_attention_choice(path, "NVIDIA H200", 91400), gpu::AttentionBackend::Ferry);
}

TEST(AttentionChoice, AutoIsFerryWithoutAVerdict) {
  TempDir dir;
  const std::string path = (dir.path() / "none.json").string();
  ::setenv("FERRY_ATTENTION_CHOICE", path.c_str(), 1);
  EXPECT_EQ(gpu::attention_choice_path(), path);
  EXPECT_EQ(gpu::choose_attention("auto"), gpu::AttentionBackend::Ferry);
  ::unsetenv("FERRY_ATTENTION_CHOICE");
}

// Every descriptor of every graph variant is accepted by the cuDNN this was built with (no device:
// this part runs in CI; whether an engine fuses the graph is the device tests' business).
TEST(AttentionCudnnGraph, EveryNodeOfEveryVariantIsAcceptedByCudnn) {
  if (!gpu::built_with_cudnn()) GTEST_SKIP() << "built without cuDNN";
  for (bool backward : {false, true})
    for (bool causal : {false, true})
      for (bool padded : {false, true})
        for (int HS : {64, 128}) {
          SCOPED_TRACE(std::string(backward ? "backward" : "forward") + (causal ? " causal" : " full") +
                       (padded ? " padded" : "") + " HS" + std::to_string(HS));
          EXPECT_NO_THROW(gpu::check_cudnn_attention_graph(2, 77, 3, HS, causal, padded, backward));
        }
}

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

  attention.backward(d_dqkv.get(), d_dout.get(), d_qkv.get(), d_out.get(), d_lse.get(), d_lengths_ptr, B, T, NH, HS,
                     causal, ws.get(), ws.size(), nullptr);
  const auto dqkv = to_double(d_dqkv.download());
  for (int which = 0; which < 3; ++which) {
    SCOPED_TRACE(which == 0 ? "dQ" : which == 1 ? "dK" : "dV");
    FERRY_EXPECT_CLOSE(qkv_part(dqkv, which, BT, C), qkv_part(dqkv_ref, which, BT, C), kBf16Tolerance);
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
