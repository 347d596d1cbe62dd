// tools/cli/plan.cpp — `ferry plan`: per-GPU memory and step time of a parallel layout on a
// cluster, from the planner and a cost model (parallel/plan.h), without running anything.
//   ferry plan --model gpt3-175b --tp 8 --pp 8 --dp 8 --nodes 64 --micro-batch 1 --grad-accum 64 --zero1 --recompute
#include <cstdio>
#include <memory>

#include "engine/model/gpt.h"
#include "parallel/plan.h"
#include "tools/cli/command.h"

namespace {

void setup(CLI::App& app) {
  auto r = std::make_shared<ferry::parallel::PlanRequest>();
  auto model = std::make_shared<std::string>("gpt2-124m");
  auto& c = r->cluster;
  app.add_option("--model", *model, "model preset (gpt2-124m … gpt2-1558m, gpt3-175b, tiny, …)");
  app.add_option("--tp", r->tp, "tensor-parallel ranks (inside one node)");
  app.add_option("--pp", r->pp, "pipeline stages");
  app.add_option("--dp", r->dp, "data-parallel replicas");
  app.add_option("--nodes", c.nodes, "nodes");
  app.add_option("--gpus-per-node", c.gpus_per_node, "GPUs per node");
  app.add_option("--gpu-mem", c.gpu_mem_gib, "GPU memory, GiB");
  app.add_option("--intra-bw", c.intra_bw_gbs, "intra-node (NVLink) bandwidth per GPU, GB/s");
  app.add_option("--inter-bw", c.inter_bw_gbs, "inter-node bandwidth per GPU, GB/s");
  app.add_option("--latency-us", c.latency_us, "α: latency per ring step or message, µs");
  app.add_option("--tflops", c.tflops, "achievable bf16 matmul rate per GPU, TFLOP/s");
  app.add_option("--peak-tflops", c.peak_tflops, "peak dense bf16 rate per GPU, for MFU");
  app.add_option("--micro-batch", r->micro_batch, "sequences per micro-batch per DP rank");
  app.add_option("--seq-len", r->seq_len, "sequence length (default: the model's)");
  app.add_option("--grad-accum", r->grad_accum, "micro-batches per step (the pipeline's micro-batches)");
  app.add_flag("--zero1", r->zero1, "shard AdamW state over the DP ranks");
  app.add_flag("--recompute", r->recompute, "recompute each layer's activations in backward");
  app.callback([r, model] {
    r->model = ferry::gpt_preset(*model);
    const auto plan = ferry::parallel::plan_layout(*r);
    std::fputs(ferry::parallel::format_plan(*r, plan).c_str(), stdout);
  });
}

}  // namespace

FERRY_COMMAND(plan, "plan", "Per-GPU memory and step time of a parallel layout on a cluster (no GPU needed)", setup);
