// tests/kernels/attention_gpu_test.cpp — the flash-style CUDA attention matches the CPU reference
// (kernels/attention.h, computed in fp64 on the same bf16 inputs): out, lse, and dQ, dK, dV
// separately; causal and bidirectional, key-padding masks (including a row with no keys), head
// dims 64 and 128, T not a multiple of the tiles; the backward is bitwise reproducible.
#include "tests/support/support.h"

#if FERRY_WITH_CUDA
#include "tests/kernels/attention_cases.h"

namespace ferry::test {
namespace {

class AttentionGpu : public ::testing::TestWithParam<AttentionCase> {};

TEST_P(AttentionGpu, ForwardAndBackwardMatchCpuReference) {
  FERRY_SKIP_WITHOUT_GPU();
  check_attention(GetParam(), test_seed(), flash_attention_kernels());
}

INSTANTIATE_TEST_SUITE_P(
    Cases, AttentionGpu,
    ::testing::ValuesIn(attention_cases()), attention_case_name);

}  // namespace
}  // namespace ferry::test
#else
TEST(AttentionGpu, SkippedInCpuOnlyBuild) { GTEST_SKIP() << "built without CUDA"; }
#endif
