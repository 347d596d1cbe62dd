// tests/kernels/layernorm_gpu_test.cpp — CUDA residual layernorm forward/backward match the CPU
// reference (kernels/layernorm.h) in fp64 on the same bf16 inputs; dweight/dbias accumulate and are
// bitwise reproducible.
#include "tests/support/support.h"

#if FERRY_WITH_CUDA
#include "tests/kernels/layernorm_cases.h"

namespace ferry::test {
namespace {

class LayernormGpu : public ::testing::TestWithParam<LayernormShape> {};

TEST_P(LayernormGpu, ForwardAndBackwardMatchCpuReference) {
  FERRY_SKIP_WITHOUT_GPU();
  check_layernorm(GetParam(), test_seed());
}

INSTANTIATE_TEST_SUITE_P(Shapes, LayernormGpu,
                         ::testing::Values(LayernormShape{1, 8, false}, LayernormShape{37, 200, true},
                                           LayernormShape{64, 768, true}, LayernormShape{129, 1024, false},
                                           LayernormShape{33, 1600, true}, LayernormShape{1030, 256, true}));

}  // namespace
}  // namespace ferry::test
#else
TEST(LayernormGpu, SkippedInCpuOnlyBuild) { GTEST_SKIP() << "built without CUDA"; }
#endif
