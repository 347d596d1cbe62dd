// tests/engine/bf16_graph_test.cpp — the dtype plumbing the CUDA backend relies on, checked on the
// CPU: a bf16 GPT graph builds, differentiates and plans, with bf16 parameters, gradients and
// activations, and fp32 layernorm statistics, attention log-sum-exps and losses (statistics_dtype).
#include <gtest/gtest.h>

#include <string>

#include "engine/autodiff.h"
#include "engine/model/gpt.h"
#include "engine/planner.h"

namespace ferry {
namespace {

TEST(Bf16Graph, StatisticsAndLossesStayFp32EverythingElseIsBf16) {
  GptBuildOptions o;
  o.batch = 2;
  o.seq_len = 16;
  o.dtype = DType::BF16;
  GptGraph m = build_gpt(gpt_preset("micro"), o);
  derive_backward(m.graph);
  const Graph& g = m.graph;
  EXPECT_EQ(g.values[g.loss].dtype, DType::F32);
  int stats = 0, lse = 0;
  for (const Node& n : g.nodes) {
    auto dt = [&](int k) { return g.values[n.out[k]].dtype; };
    if (n.op == "layernorm") {
      EXPECT_EQ(dt(0), DType::BF16);
      EXPECT_EQ(dt(1), DType::F32);
      EXPECT_EQ(dt(2), DType::F32);
      stats += 2;
    } else if (n.op == "residual_layernorm") {
      EXPECT_EQ(dt(0), DType::BF16);
      EXPECT_EQ(dt(1), DType::BF16);
      EXPECT_EQ(dt(2), DType::F32);
      EXPECT_EQ(dt(3), DType::F32);
      stats += 2;
    } else if (n.op == "attention") {
      EXPECT_EQ(dt(0), DType::BF16);
      EXPECT_EQ(dt(1), DType::F32);
      ++lse;
    } else if (n.op == "cross_entropy") {
      EXPECT_EQ(dt(0), DType::F32);  // per-row losses
      EXPECT_EQ(dt(1), DType::F32);  // mean
      EXPECT_EQ(dt(2), DType::BF16); // dlogits, over the bf16 logits
    } else {
      for (int v : n.out)
        if (v >= 0) EXPECT_EQ(g.values[v].dtype, DType::BF16) << n.op << " output " << g.values[v].name;
    }
  }
  EXPECT_EQ(stats, 2 * 5);  // micro: two norms per block (2 blocks) and ln_f
  EXPECT_EQ(lse, 2);
  for (const ParamInfo& p : g.params) {
    EXPECT_EQ(g.values[p.value].dtype, DType::BF16) << p.name;
    ASSERT_GE(p.grad, 0) << p.name;
    EXPECT_EQ(g.values[p.grad].dtype, DType::BF16) << p.name;
  }
  const MemoryPlan plan = plan_memory(g);
  verify_plan(g, plan);
  EXPECT_EQ(plan.param_bytes, static_cast<size_t>(g.param_count()) * 2);
  for (size_t v = 0; v < g.values.size(); ++v)
    if (plan.offset[v] >= 0) EXPECT_EQ(plan.offset[v] % 256, 0) << g.values[v].name << " is not 256-byte aligned";
}

TEST(Bf16Graph, Fp32AndFp64GraphsKeepTheirOwnDtypeForStatistics) {
  for (DType t : {DType::F32, DType::F64}) {
    GptBuildOptions o;
    o.batch = 1;
    o.seq_len = 8;
    o.dtype = t;
    GptGraph m = build_gpt(gpt_preset("nano"), o);
    for (const Node& n : m.graph.nodes)
      for (int v : n.out)
        if (v >= 0) EXPECT_EQ(m.graph.values[v].dtype, t) << n.op << " " << dtype_name(t);
  }
}

}  // namespace
}  // namespace ferry
