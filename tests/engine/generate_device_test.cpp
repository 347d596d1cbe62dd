// tests/engine/generate_device_test.cpp — what lets generation (training samples, `ferry generate`)
// run on the CUDA backend, checked without a device: the Generator builds its graph in the dtype of
// the backend it is given (bf16 for CUDA: parameters and logits bf16, statistics fp32, as the step runner
// and Inference retype their graphs), plans it there, rounds the parameters into its bf16 buffers,
// and (in a CUDA build) every op of that graph has a CUDA kernel. A backend that says it is CUDA but
// hands out host memory stands in for the device: nothing here launches a kernel.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include "engine/executor.h"
#include "engine/generate/sampler.h"
#include "engine/op.h"
#include "kernels/dtype.h"
#include "tests/support/support.h"

#if FERRY_WITH_CUDA
#include "engine/cuda/cuda_context.h"
#endif

namespace ferry {
namespace {

class HostMemoryCudaBackend final : public Backend {
 public:
  Device device() const override { return Device::CUDA; }
  std::string name() const override { return "host-memory cuda stand-in"; }
  void* allocate(size_t bytes) override { return std::aligned_alloc(256, (bytes + 255) / 256 * 256); }
  void release(void* p) override { std::free(p); }
  void upload(void* d, const void* s, size_t n) override { std::memcpy(d, s, n); }
  void download(void* d, const void* s, size_t n) override { std::memcpy(d, s, n); }
  void zero(void* p, size_t n) override { std::memset(p, 0, n); }
  size_t capacity() const override { return size_t(1) << 34; }
};

GptConfig small() {
  GptConfig c = gpt_preset("nano");
  c.vocab_size = 200;  // padded to 256 in the graph
  return c;
}

TEST(GenerateDevice, TheGraphForACudaBackendIsBf16AndPlans) {
  HostMemoryCudaBackend cuda;
  const GptConfig c = small();
  Generator gen(c, cuda, c.max_seq_len);
  const Graph& g = gen.graph();
  ASSERT_FALSE(g.params.empty());
  for (const ParamInfo& p : g.params) EXPECT_EQ(g.values[p.value].dtype, DType::BF16) << p.name;
  int logits = 0;
  for (const Value& v : g.values)
    if (v.role == ValueRole::Output) {
      EXPECT_EQ(v.dtype, DType::BF16) << v.name;
      EXPECT_EQ(v.shape.back(), padded_vocab_size(c.vocab_size)) << v.name;
      ++logits;
    }
  EXPECT_EQ(logits, 1);
  for (const Node& n : g.nodes) {
    if (n.op == "layernorm" || n.op == "residual_layernorm") {
      EXPECT_EQ(g.values[n.out.back()].dtype, DType::F32) << n.op << " rstd";
      EXPECT_EQ(g.values[n.out[n.out.size() - 2]].dtype, DType::F32) << n.op << " mean";
    }
    if (n.op == "attention") EXPECT_EQ(g.values[n.out[1]].dtype, DType::F32) << "lse";
  }
}

// What the Generator (and Inference) hand a bf16 graph's executor: logical fp32 parameters, rounded
// to nearest even into the storage order, padding rows and alignment gaps left zero; read back
// widened.
TEST(GenerateDevice, ParametersAreRoundedIntoBf16BuffersInTheStorageOrder) {
  HostMemoryCudaBackend cuda;
  const GptConfig c = small();
  Generator gen(c, cuda, 8);
  Graph g = gen.graph();  // bf16, forward only
  Executor ex(g, cuda);
  std::vector<float> flat(static_cast<size_t>(g.param_count()));
  for (size_t i = 0; i < flat.size(); ++i) flat[i] = 0.001f * float(i % 977) - 0.3f + 1e-6f;
  ex.set_parameters(flat);
  const std::vector<float> back = ex.parameters();
  ASSERT_EQ(back.size(), flat.size());
  for (size_t i = 0; i < flat.size(); ++i) ASSERT_EQ(back[i], bf16_to_float(float_to_bf16(flat[i]))) << i;
  const auto* storage = ex.params().as<bf16>();
  std::vector<bool> used(static_cast<size_t>(g.storage_size()), false);
  for (const ParamInfo& p : g.params)
    for (int64_t i = 0; i < p.numel; ++i) used[p.storage + i] = true;
  for (size_t i = 0; i < used.size(); ++i)
    if (!used[i]) ASSERT_EQ(bf16_to_float(storage[i]), 0.0f) << "padding or gap element " << i;
}

#if FERRY_WITH_CUDA
TEST(GenerateDevice, EveryOpOfTheGenerationGraphHasACudaKernel) {
  gpu::attach_cuda_kernels();  // no device needed: it only fills the op registry
  HostMemoryCudaBackend cuda;
  for (const char* preset : {"nano", "micro"}) {
    const GptConfig c = gpt_preset(preset);
    Generator gen(c, cuda, c.max_seq_len);
    for (const Node& n : gen.graph().nodes) EXPECT_TRUE(static_cast<bool>(op_def(n.op).cuda)) << n.op;
  }
}
#endif

}  // namespace
}  // namespace ferry
