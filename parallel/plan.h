// parallel/plan.h — what a layout costs on a cluster, before renting it (`ferry plan`).
//
// Memory per GPU comes from the planner: each pipeline stage's per-rank graph (the tensor-parallel
// rewrite and the stage cut of the real run, in bf16) is differentiated and planned exactly as a
// run would; the worst stage is reported. Parameters are counted at 2 bytes (bf16 working copy),
// gradients at 4 (fp32, reduced deterministically), AdamW at 12 (fp32 master, m, v; divided by dp
// with ZeRO-1). Under 1F1B stage s keeps min(pp − s, micro-batches) micro-batches in flight, each
// in its own arena, plus the working one. Recompute is estimated (the planner does not drop
// activations yet): an in-flight micro-batch then keeps only each layer's two residual inputs, and
// the working arena is that of a one-layer stage.
//
// Step time: every rank's FLOPs (6 per parameter per token, plus the attention term 6·L·T·C, +1/3
// with recompute) at an achievable rate; collectives on an alpha-beta model: a ring all-reduce of
// b bytes over n ranks takes 2(n−1)/n · b/bw + 2(n−1)·α, with bw the intra-node bandwidth when the
// group fits in a node, else the inter-node one. Tensor-parallel all-reduces and pipeline sends sit
// on the critical path; the pipeline adds its bubble, (pp−1)/(m+pp−1) of the step; the DP gradient
// all-reduce overlaps the last micro-batch's backward (ZeRO-1's parameter all-gather does not).
#pragma once
#include <string>
#include <vector>

#include "engine/model/gpt.h"

namespace ferry::parallel {

struct ClusterShape {
  int nodes = 1;
  int gpus_per_node = 8;
  double gpu_mem_gib = 80;
  double intra_bw_gbs = 450;   // per GPU, one direction (NVLink 4: ~450 GB/s)
  double inter_bw_gbs = 50;    // per GPU (400 Gb/s InfiniBand: 50 GB/s)
  double latency_us = 10;      // α per ring step or message
  double tflops = 400;         // achievable bf16 matrix rate per GPU
  double hbm_tbs = 3.0;        // memory bandwidth for the optimizer pass
  double peak_tflops = 989;    // the GPU's dense bf16 peak, for MFU (H100 SXM)
};

struct PlanRequest {
  GptConfig model;
  int tp = 1, pp = 1, dp = 1;
  int micro_batch = 1;
  int seq_len = 0;       // 0: the model's max_seq_len
  int grad_accum = 1;    // micro-batches per step (per DP rank)
  bool zero1 = false;
  bool recompute = false;
  ClusterShape cluster;
};

struct StageMemory {
  int stage = 0;
  int layers = 0;
  double params = 0, grads = 0, optimizer = 0;   // bytes
  double arena = 0;                              // one micro-batch's planned activations
  int in_flight = 1;
  double activations = 0, activations_recompute = 0;
  double total() const { return params + grads + optimizer + activations; }
  double total_recompute() const { return params + grads + optimizer + activations_recompute; }
};

struct Plan {
  int vocab_padded = 0;
  int64_t params_total = 0;
  std::vector<StageMemory> stages;
  int worst_stage = 0;
  double compute_s = 0, tp_comm_s = 0, pp_comm_s = 0, bubble_s = 0, dp_comm_s = 0, dp_exposed_s = 0,
         tie_s = 0, optimizer_s = 0, step_s = 0;
  double tokens_per_step = 0, tokens_per_s = 0, mfu = 0;
};

// Throws UserError naming the flag when the layout does not fit the cluster or the model.
Plan plan_layout(const PlanRequest& r);
std::string format_plan(const PlanRequest& r, const Plan& p);

}  // namespace ferry::parallel
