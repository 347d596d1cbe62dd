// tests/kernels/attention_cudnn_test.cpp — cuDNN's attention graphs (kernels/cuda/attention_cudnn.h)
// without a device: every descriptor of every graph variant is accepted by the cuDNN this was built
// with, and what cannot run here is said in the kernel's own words (no setting, no flag: which
// setting chose cuDNN is the engine's to say, engine/attention_choice.h). Whether an engine fuses the
// graphs, and the numbers, are tests/kernels/attention_cudnn_gpu_test.cpp's business.
#include "tests/support/support.h"

#if FERRY_WITH_CUDA
#include "base/error.h"
#include "kernels/cuda/attention_cudnn.h"

namespace ferry::test {
namespace {

namespace gpu = ferry::kernels::cuda;

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

TEST(AttentionCudnn, WhatCannotRunHereIsAKernelErrorWithoutAFlag) {
  const std::string why = gpu::cudnn_attention_unsupported_reason(0, true);
  if (why.empty()) GTEST_SKIP() << "cuDNN attention can run here";
  try {
    gpu::CudnnAttention attention;
    FAIL() << "constructed although: " << why;
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()), "cuDNN attention: " + why);
  }
}

}  // namespace
}  // namespace ferry::test
#else
TEST(AttentionCudnnGraph, SkippedInCpuOnlyBuild) { GTEST_SKIP() << "built without CUDA"; }
#endif
