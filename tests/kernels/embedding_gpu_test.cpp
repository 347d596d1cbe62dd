// tests/kernels/embedding_gpu_test.cpp — CUDA embedding forward/backward match the CPU reference
// (kernels/embedding.h), and the backward is bitwise reproducible even with many repeated tokens
// (the check: tests/kernels/embedding_cases.h, which the emulator runs too).
#include "tests/support/support.h"

#if FERRY_WITH_CUDA
#include "tests/kernels/embedding_cases.h"

namespace ferry::test {
namespace {

class EmbeddingGpu : public ::testing::TestWithParam<EmbeddingShape> {};

TEST_P(EmbeddingGpu, ForwardAndBackwardMatchCpuReference) {
  FERRY_SKIP_WITHOUT_GPU();
  check_embedding(GetParam(), test_seed());
}

// Small V forces long runs of one token id (V = 3 over 4096 positions: runs of ~1365, cut into
// chunks of 32 and combined), as does the Zipf batch; GPT-2's V the sparse case.
INSTANTIATE_TEST_SUITE_P(Shapes, EmbeddingGpu,
                         ::testing::Values(EmbeddingShape{2, 64, 64, 7}, EmbeddingShape{3, 37, 200, 1000},
                                           EmbeddingShape{4, 256, 768, 50257}, EmbeddingShape{1, 1, 8, 1},
                                           EmbeddingShape{8, 512, 64, 3}, EmbeddingShape{8, 1024, 64, 2000, true}));

}  // namespace
}  // namespace ferry::test
#else
TEST(EmbeddingGpu, SkippedInCpuOnlyBuild) { GTEST_SKIP() << "built without CUDA"; }
#endif
