// tests/finetune/finetune_device_test.cpp — what lets the fine-tuning graphs run on the CUDA backend,
// checked without a device: an fp32 task graph retyped for CUDA is bf16 except its statistics and
// losses (engine/graph_dtype.h), the CPU keeps it as built, and every op of every fine-tuning graph
// (forward and backward, each head, LoRA, frozen parts, multi-task) has a CUDA kernel attached.
#include <gtest/gtest.h>

#include <set>

#include "engine/autodiff.h"
#include "engine/backend.h"
#include "engine/device.h"
#include "engine/graph_dtype.h"
#include "engine/op.h"
#include "tests/finetune/finetune_graphs.h"

#if FERRY_WITH_CUDA
#include "engine/cuda/cuda_context.h"
#endif

namespace ferry {
namespace {

TEST(FinetuneDevice, RetypedForCudaIsBf16ButStatisticsAndLossesStayFp32) {
  for (const auto& fc : test::finetune_cases()) {
    SCOPED_TRACE(fc.name);
    const GptConfig c = test::finetune_config(fc.causal);
    test::BuiltCase b = test::build_case(fc, c, 3, 8);
    Graph cpu = b.graph;
    EXPECT_FALSE(retype_graph(cpu, DType::F64, DType::BF16));  // nothing fp64 in it
    retype_for_device(cpu, Device::CPU);
    for (size_t v = 0; v < cpu.values.size(); ++v) EXPECT_EQ(cpu.values[v].dtype, b.graph.values[v].dtype);

    retype_for_device(b.graph, Device::CUDA);
    const Graph& g = b.graph;
    for (const ParamInfo& p : g.params) EXPECT_EQ(g.values[p.value].dtype, DType::BF16) << p.name;
    EXPECT_EQ(g.values[b.tokens].dtype, DType::I32);
    for (int l : b.logits) EXPECT_EQ(g.values[l].dtype, DType::BF16);
    EXPECT_EQ(g.values[g.loss].dtype, DType::F32);
    for (const Node& n : g.nodes) {
      if (n.op == "layernorm" || n.op == "residual_layernorm") {  // mean and rstd, the last two outputs
        EXPECT_EQ(g.values[n.out[n.out.size() - 1]].dtype, DType::F32);
        EXPECT_EQ(g.values[n.out[n.out.size() - 2]].dtype, DType::F32);
      }
      if (n.op == "attention") EXPECT_EQ(g.values[n.out[1]].dtype, DType::F32) << "lse";
      if (n.op == "cross_entropy") EXPECT_EQ(g.values[n.out[1]].dtype, DType::F32) << "loss";
    }
    // Autodiff after the retype gives bf16 parameter gradients.
    derive_backward(b.graph);
    for (const ParamInfo& p : b.graph.params)
      if (p.grad >= 0) EXPECT_EQ(b.graph.values[p.grad].dtype, DType::BF16) << p.name;
  }
}

TEST(FinetuneDevice, RetypeRefusesAGraphWithBackwardNodes) {
  const auto cases = test::finetune_cases();
  test::BuiltCase b = test::build_case(cases[0], test::finetune_config(true), 2, 4);
  derive_backward(b.graph);
  EXPECT_ANY_THROW(retype_graph(b.graph, DType::F32, DType::BF16));
}

TEST(FinetuneDevice, AutoTakesTheGpuOnlyWhenOneAnswersAndTheCommandAsksForIt) {
  const Device usable = cuda_device_count() > 0 ? Device::CUDA : Device::CPU;
  EXPECT_EQ(make_backend("auto", AutoDevice::Gpu)->device(), usable);
  EXPECT_EQ(make_backend("auto")->device(), Device::CPU);
  EXPECT_EQ(make_backend("cpu", AutoDevice::Gpu)->device(), Device::CPU);
}

#if FERRY_WITH_CUDA
TEST(FinetuneDevice, EveryOpOfEveryFinetuneGraphHasACudaKernel) {
  gpu::attach_cuda_kernels();  // no device needed: it only fills the op registry
  std::set<std::string> seen;
  for (const auto& fc : test::finetune_cases()) {
    SCOPED_TRACE(fc.name);
    const GptConfig c = test::finetune_config(fc.causal);
    test::BuiltCase b = test::build_case(fc, c, 2, 8);
    retype_for_device(b.graph, Device::CUDA);
    derive_backward(b.graph);
    for (const Node& n : b.graph.nodes) {
      seen.insert(n.op);
      EXPECT_TRUE(static_cast<bool>(op_def(n.op).cuda)) << n.op << " has no CUDA kernel";
    }
  }
  // The cases reach the fine-tuning ops themselves, forward and backward.
  for (const char* op : {"pool_tokens", "pool_tokens_backward", "scale", "sum_losses", "add"})
    EXPECT_TRUE(seen.count(op)) << op << " not exercised";
}
#else
TEST(FinetuneDevice, EveryOpOfEveryFinetuneGraphHasACudaKernel) { GTEST_SKIP() << "built without CUDA"; }
#endif

}  // namespace
}  // namespace ferry
