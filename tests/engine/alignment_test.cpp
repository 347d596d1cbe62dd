// tests/engine/alignment_test.cpp — every graph builder lays out parameters, gradients and
// activations 128-byte aligned (engine/graph.h: the storage order; engine/planner.h: the arena), in
// fp32 (the CPU) and retyped to bf16 (the CUDA backend), whatever the sizes before a tensor: GPT,
// the encoder, every fine-tuning head and multi-task, LoRA, frozen trunks, and the tensor- and
// pipeline-parallel rewrites. Checked on the offsets and on the pointers an executor hands kernels.
// Ragged sizes on purpose: a 16-wide model, a 3-class head, 9 tags, vocabularies of 96 and 251.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "engine/autodiff.h"
#include "engine/executor.h"
#include "engine/graph_dtype.h"
#include "engine/model/gpt.h"
#include "engine/model/heads.h"
#include "parallel/pipeline.h"
#include "parallel/tensor_parallel.h"
#include "tests/finetune/finetune_graphs.h"
#if FERRY_WITH_CUDA
#include "kernels/matmul.h"
#endif

namespace ferry {
namespace {

constexpr size_t kAlign = 128;

bool aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % kAlign == 0; }

// `g` is forward-only, in fp32: checked as built and retyped to bf16, each after autodiff.
void expect_aligned(const Graph& forward, const std::string& what) {
  auto cpu = make_cpu_backend();
  for (const bool bf16 : {false, true}) {
    SCOPED_TRACE(what + (bf16 ? " (bf16)" : " (fp32)"));
    Graph g = forward;
    if (bf16) retype_graph(g, DType::F32, DType::BF16);
    derive_backward(g);
    int grads = 0;
    for (const ParamInfo& p : g.params) {
      const size_t elem = dtype_size(g.values[p.value].dtype);
      EXPECT_EQ(p.storage * elem % kAlign, 0u) << p.name << " at element " << p.storage;
      grads += p.grad >= 0;
    }
    EXPECT_GT(grads, 0) << "no gradients: the check would see none";
    const MemoryPlan plan = plan_memory(g);
    for (size_t v = 0; v < g.values.size(); ++v)
      if (plan.offset[v] >= 0) EXPECT_EQ(plan.offset[v] % int64_t(kAlign), 0) << g.values[v].name << " in the arena";
    // The pointers kernels receive: flat buffers and arena from the backend, plus the offsets.
    Executor ex(g, *cpu);
    for (size_t v = 0; v < g.values.size(); ++v) {
      const Value& val = g.values[v];
      if (val.role != ValueRole::Param && val.role != ValueRole::ParamGrad && plan.offset[v] < 0) continue;
      EXPECT_TRUE(aligned(ex.tensor(int(v)).data)) << val.name << " at " << ex.tensor(int(v)).data;
    }
  }
}

GptConfig ragged_gpt(bool causal) {
  GptConfig c;
  c.preset = "ragged";
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 16;
  c.vocab_size = 251;
  c.max_seq_len = 12;
  c.causal = causal;
  return c;
}

GptGraph gpt_graph(const GptConfig& c) {
  GptBuildOptions o;
  o.batch = 2;
  o.seq_len = 7;
  return build_gpt(c, o);
}

TEST(Alignment, GptAndEncoderLanguageModels) {
  expect_aligned(gpt_graph(ragged_gpt(true)).graph, "gpt, tied head");
  GptConfig untied = ragged_gpt(true);
  untied.tied_head = false;
  expect_aligned(gpt_graph(untied).graph, "gpt, untied head");
  expect_aligned(gpt_graph(ragged_gpt(false)).graph, "encoder");
  expect_aligned(gpt_graph(gpt_preset("nano")).graph, "nano preset");
}

TEST(Alignment, EveryFinetuneGraph) {
  for (const test::FinetuneCase& fc : test::finetune_cases())
    for (const int n_embd : {16, 64}) {
      const GptConfig c = test::finetune_config(fc.causal, n_embd, 2);
      expect_aligned(test::build_case(fc, c, 3, 5).graph, fc.name + " C=" + std::to_string(n_embd));
    }
  // A three-class classifier: its bias of 3 elements is the classic misaligner of what follows.
  HeadSpec h;
  h.task = "three";
  h.kind = HeadKind::SequenceClassification;
  h.n_classes = 3;
  TrunkOptions o;
  o.batch = 2;
  o.seq_len = 5;
  expect_aligned(build_task_graph(ragged_gpt(false), h, o).graph, "3-class classifier");
  HeadSpec tags = h;
  tags.task = "tags";
  tags.kind = HeadKind::TokenClassification;
  expect_aligned(build_multitask_graph(ragged_gpt(false), {h, tags}, {1.0f, 0.5f}, o).graph, "multi-task 3+3");
}

TEST(Alignment, TensorAndPipelineParallelRewrites) {
  parallel::register_tensor_parallel_ops();
  parallel::register_pipeline_ops();
  GptConfig c = ragged_gpt(true);
  c.n_layer = 3;
  c.vocab_size = 250;  // divisible by tp = 2
  const GptGraph full = gpt_graph(c);
  for (const int tp : {1, 2})
    for (const int rank : {0, tp - 1}) {
      const Graph g = tp > 1 ? parallel::tensor_parallel_rewrite(full.graph, c, rank, tp, 0).graph : full.graph;
      if (tp > 1) expect_aligned(g, "tp rank " + std::to_string(rank) + " of " + std::to_string(tp));
      for (const int pp : {2, 3}) {
        const auto node_stage = parallel::stage_of_nodes(g, c.n_layer, pp);
        for (int s = 0; s < pp; ++s)
          expect_aligned(parallel::cut_pipeline_stage(g, node_stage, s, pp).graph,
                         "tp " + std::to_string(tp) + " rank " + std::to_string(rank) + ", pp stage " +
                             std::to_string(s) + " of " + std::to_string(pp));
      }
    }
}

#if FERRY_WITH_CUDA
// What Matmul tells cuBLASLt about an operand (and keys its algorithm cache on): the address's and
// the row pitch's common power of two, capped at cuBLASLt's default assumption of 256 bytes.
TEST(Alignment, CublasLtIsToldEachOperandsRealAlignment) {
  using kernels::cuda::matmul_operand_alignment;
  alignas(256) static char block[1024];
  EXPECT_EQ(matmul_operand_alignment(block, 768, 2), 256u);
  EXPECT_EQ(matmul_operand_alignment(block + 128, 768, 2), 128u);
  EXPECT_EQ(matmul_operand_alignment(block + 2, 768, 2), 2u);
  EXPECT_EQ(matmul_operand_alignment(block, 50257, 2), 2u) << "GPT-2's vocabulary as a leading dimension";
  EXPECT_EQ(matmul_operand_alignment(block, 50304, 2), 256u) << "padded to a multiple of 128";
  EXPECT_EQ(matmul_operand_alignment(block, 25136, 2), 32u) << "a tensor-parallel vocabulary shard";
  EXPECT_EQ(matmul_operand_alignment(block + 64, 3, 4), 4u);
}
#endif

}  // namespace
}  // namespace ferry
