// tests/kernels/embedding_gpu_test.cpp — CUDA embedding forward/backward match the CPU reference
// (kernels/embedding.h), and the backward is bitwise reproducible even with many repeated tokens.
#include "tests/support/support.h"

#if FERRY_WITH_CUDA
#include "kernels/embedding.h"
#include "tests/kernels/cuda_test_util.h"

namespace ferry::test {
namespace {

namespace cpu = ferry::kernels::cpu;
namespace gpu = ferry::kernels::cuda;

struct Shape {
  int B, T, C, V;
};

class EmbeddingGpu : public ::testing::TestWithParam<Shape> {};

TEST_P(EmbeddingGpu, ForwardAndBackwardMatchCpuReference) {
  FERRY_SKIP_WITHOUT_GPU();
  const auto [B, T, C, V] = GetParam();
  std::mt19937_64 rng(test_seed());
  std::uniform_int_distribution<int32_t> tok(0, V - 1);
  std::vector<int32_t> tokens(size_t(B) * T);
  for (auto& t : tokens) t = tok(rng);
  const auto wte = random_bf16_values(size_t(V) * C, rng), wpe = random_bf16_values(size_t(T) * C, rng);
  const auto dout = random_bf16_values(size_t(B) * T * C, rng);
  const auto dwte0 = random_bf16_values(size_t(V) * C, rng), dwpe0 = random_bf16_values(size_t(T) * C, rng);

  std::vector<double> out_ref(size_t(B) * T * C), dwte_ref = dwte0, dwpe_ref = dwpe0;
  cpu::embedding_forward(out_ref.data(), tokens.data(), wte.data(), wpe.data(), B, T, C);
  cpu::embedding_backward(dwte_ref.data(), dwpe_ref.data(), dout.data(), tokens.data(), B, T, C, V);

  DeviceBuffer<int32_t> d_tokens(tokens);
  DeviceBuffer<bf16> d_wte(to_bf16(wte)), d_wpe(to_bf16(wpe)), d_out(out_ref.size()), d_dout(to_bf16(dout));
  gpu::embedding_forward(d_out.get(), d_tokens.get(), d_wte.get(), d_wpe.get(), B, T, C, nullptr);
  FERRY_EXPECT_CLOSE(to_double(d_out.download()), out_ref, kBf16Tolerance);

  const size_t ws_bytes = gpu::embedding_backward_workspace_bytes(B, T, C, V);
  DeviceBuffer<unsigned char> ws(ws_bytes);
  std::vector<std::vector<bf16>> runs;
  for (int run = 0; run < 2; ++run) {
    DeviceBuffer<bf16> d_dwte(to_bf16(dwte0)), d_dwpe(to_bf16(dwpe0));
    ws.poison();
    gpu::embedding_backward(d_dwte.get(), d_dwpe.get(), d_dout.get(), d_tokens.get(), B, T, C, V, ws.get(), ws_bytes,
                            nullptr);
    const auto dwte = d_dwte.download(), dwpe = d_dwpe.download();
    FERRY_EXPECT_CLOSE(to_double(dwte), dwte_ref, kBf16Tolerance);
    FERRY_EXPECT_CLOSE(to_double(dwpe), dwpe_ref, kBf16Tolerance);
    runs.push_back(dwte);
  }
  EXPECT_TRUE(bitwise_equal(runs[0], runs[1])) << "embedding backward is not reproducible";
}

// Small V forces long runs of one token id (V = 3 over 4096 positions: runs of ~1365, cut into
// chunks of 32 and combined); GPT-2's V the sparse case.
INSTANTIATE_TEST_SUITE_P(Shapes, EmbeddingGpu,
                         ::testing::Values(Shape{2, 64, 64, 7}, Shape{3, 37, 200, 1000}, Shape{4, 256, 768, 50257},
                                           Shape{1, 1, 8, 1}, Shape{8, 512, 64, 3}));

}  // namespace
}  // namespace ferry::test
#else
TEST(EmbeddingGpu, SkippedInCpuOnlyBuild) { GTEST_SKIP() << "built without CUDA"; }
#endif
