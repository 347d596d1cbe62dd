// parallel/plan.cpp
#include "parallel/plan.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "engine/autodiff.h"
#include "base/error.h"
#include "base/setting_error.h"
#include "engine/planner.h"
#include "parallel/pipeline.h"
#include "parallel/tensor_parallel.h"

namespace ferry::parallel {

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// The vocabulary rows the engine's graphs hold over all TP ranks: padded to a multiple of 128 in one
// process (engine/model/gpt.h), ⌈V/tp⌉ rounded up to 8 rows per rank under TP (tensor_parallel.h).
int padded_vocab(int v, int tp) { return tp == 1 ? padded_vocab_size(v) : vocab_shard_rows(v, tp) * tp; }

double ring_all_reduce_s(int n, double bytes, double bw_gbs, double alpha_us) {
  if (n <= 1) return 0;
  return 2.0 * (n - 1) / n * bytes / (bw_gbs * 1e9) + 2.0 * (n - 1) * alpha_us * 1e-6;
}

struct StageGraph {
  Graph graph;
  int n_model_params = 0;
};

// The per-rank graph of every stage (TP rank 0, which also holds the row-parallel biases), with backward.
std::vector<StageGraph> stage_graphs(const GptConfig& m, int tp, int pp, int batch, int seq) {
  GptBuildOptions o;
  o.batch = batch;
  o.seq_len = seq;
  o.dtype = DType::BF16;
  GptGraph full = build_gpt(m, o);
  Graph g = tp > 1 ? tensor_parallel_rewrite(full.graph, m, 0, tp, /*group, never run*/ 0).graph : full.graph;
  std::vector<StageGraph> out;
  if (pp == 1) {
    out.push_back({g, static_cast<int>(g.params.size())});
  } else {
    const auto node_stage = stage_of_nodes(g, m.n_layer, pp);
    for (int s = 0; s < pp; ++s) {
      PipelineStage st = cut_pipeline_stage(g, node_stage, s, pp);
      out.push_back({std::move(st.graph), st.n_model_params});
    }
  }
  for (auto& s : out) derive_backward(s.graph);
  return out;
}

// Elements the device holds (and multiplies) for the model's parameters: padding rows included.
int64_t param_elements(const Graph& g, int n, const char* only = nullptr) {
  int64_t e = 0;
  for (int k = 0; k < n; ++k)
    if (!only || g.params[k].name == only) e += g.params[k].storage_numel;
  return e;
}

}  // namespace

Plan plan_layout(const PlanRequest& req) {
  const ClusterShape& c = req.cluster;
  const int world = req.tp * req.pp * req.dp;
  if (req.tp < 1 || req.pp < 1 || req.dp < 1) user_error("tp, pp and dp must be at least 1");
  if (world != c.nodes * c.gpus_per_node)
    user_error("tp ", req.tp, " × pp ", req.pp, " × dp ", req.dp, " = ", world, " ranks, but nodes ", c.nodes,
               " × gpus_per_node ", c.gpus_per_node, " = ", c.nodes * c.gpus_per_node, " GPUs");
  if (req.tp > c.gpus_per_node) setting_error("tp", req.tp, ": a tensor-parallel group must fit in one node (",
                                              c.gpus_per_node, " GPUs)");
  if (req.micro_batch < 1 || req.grad_accum < 1) user_error("micro_batch and grad_accum must be at least 1");
  GptConfig m = req.model;
  const int T = req.seq_len ? req.seq_len : m.max_seq_len;
  if (T > m.max_seq_len) setting_error("seq_len", T, " exceeds the model's ", m.max_seq_len, " positions");
  Plan p;
  p.vocab_padded = padded_vocab(m.vocab_size, req.tp);  // the graphs below pad the real vocabulary themselves
  check_tensor_parallel(m, req.tp);
  const auto layers = stage_layers(m.n_layer, req.pp);
  const int B = req.micro_batch, K = req.grad_accum;
  const double BTC2 = double(B) * T * m.n_embd * 2;  // one bf16 activation of the residual stream

  const auto stages = stage_graphs(m, req.tp, req.pp, B, T);
  // The working arena under recompute: one layer's forward and backward (plus embedding and head).
  GptConfig one = m;
  one.n_layer = 1;
  const double arena_one_layer = double(plan_memory(stage_graphs(one, req.tp, 1, B, T)[0].graph).arena_bytes);
  {
    GptBuildOptions o;
    o.batch = 1;
    o.seq_len = 1;
    GptConfig unpadded = req.model;
    p.params_total = build_gpt(unpadded, o).graph.param_count();
  }

  const double tf = c.tflops * 1e12;
  const double recompute_factor = req.recompute ? 8.0 / 6.0 : 1.0;
  const double bw_tp = req.tp <= c.gpus_per_node ? c.intra_bw_gbs : c.inter_bw_gbs;
  const double bw_pp = req.tp * req.dp < c.gpus_per_node ? c.intra_bw_gbs : c.inter_bw_gbs;
  const double bw_dp = req.tp * req.dp <= c.gpus_per_node ? c.intra_bw_gbs : c.inter_bw_gbs;
  double worst_micro = 0, worst_compute = 0, worst_tp = 0, worst_pp = 0;
  int64_t worst_local = 0, wte_local = 0;
  double worst_mem = -1;
  for (int s = 0; s < req.pp; ++s) {
    const StageGraph& sg = stages[s];
    const int L = layers[s].second - layers[s].first;
    const int64_t local = param_elements(sg.graph, sg.n_model_params);
    StageMemory mem;
    mem.stage = s;
    mem.layers = L;
    mem.params = 2.0 * local;
    mem.grads = 4.0 * local;
    mem.optimizer = 12.0 * local / (req.zero1 ? req.dp : 1);
    mem.arena = double(plan_memory(sg.graph).arena_bytes);
    mem.in_flight = req.pp > 1 ? std::min(req.pp - s, K) : 1;
    const int working = req.pp > 1 ? 1 : 0;  // pp = 1: the one arena is the working one
    mem.activations = mem.arena * (mem.in_flight + working);
    mem.activations_recompute = mem.in_flight * (2.0 * L * BTC2 / 1.0) + arena_one_layer;
    p.stages.push_back(mem);
    const double total = req.recompute ? mem.total_recompute() : mem.total();
    if (total > worst_mem) worst_mem = total, p.worst_stage = s;

    // Matmul parameters of the stage: every one but the position table and, on a first stage that
    // is not also the last, the embedding table (a lookup, no FLOPs; the tied head is on the last).
    int64_t matmul = local - param_elements(sg.graph, sg.n_model_params, "wpe");
    if (s == 0 && req.pp > 1) matmul -= param_elements(sg.graph, sg.n_model_params, "wte");
    if (s == req.pp - 1) wte_local = param_elements(sg.graph, sg.n_model_params, "wte");
    const double flops = (6.0 * matmul * B * T + 6.0 * L * double(T) * m.n_embd * B * T / req.tp) * recompute_factor;
    const double compute = flops / tf;
    const int all_reduces = 4 * L + (req.recompute ? 2 * L : 0) + (s == 0 ? 1 : 0) + (s == req.pp - 1 ? 1 : 0);
    const double tp_s = all_reduces * ring_all_reduce_s(req.tp, BTC2, bw_tp, c.latency_us);
    // ferry's cut sends the residual stream and the last block's unadded output: two tensors each way.
    const double pp_s = req.pp > 1 ? 2.0 * (2.0 * BTC2 / (bw_pp * 1e9) + c.latency_us * 1e-6) : 0;
    const double micro = compute + tp_s + pp_s;
    if (micro > worst_micro) {
      worst_micro = micro, worst_compute = compute, worst_tp = tp_s, worst_pp = pp_s;
    }
    worst_local = std::max(worst_local, local);
  }
  p.compute_s = K * worst_compute;
  p.tp_comm_s = K * worst_tp;
  p.pp_comm_s = K * worst_pp;
  p.bubble_s = (req.pp - 1) * worst_micro;
  const double grad_bytes = 4.0 * worst_local;
  p.dp_comm_s = ring_all_reduce_s(req.dp, grad_bytes, bw_dp, c.latency_us);
  const double last_backward = worst_compute * 2.0 / 3.0;
  p.dp_exposed_s = req.zero1 ? std::max(0.0, p.dp_comm_s / 2 - last_backward) + p.dp_comm_s / 2
                             : std::max(0.0, p.dp_comm_s - last_backward);
  const double bw_tie = world <= c.gpus_per_node ? c.intra_bw_gbs : c.inter_bw_gbs;
  p.tie_s = req.pp > 1 ? ring_all_reduce_s(2, 4.0 * wte_local, bw_tie, c.latency_us) : 0;
  p.optimizer_s = 28.0 * worst_local / (req.zero1 ? req.dp : 1) / (c.hbm_tbs * 1e12);
  p.step_s = (K + req.pp - 1) * worst_micro + p.dp_exposed_s + p.tie_s + p.optimizer_s;
  p.tokens_per_step = double(B) * T * K * req.dp;
  p.tokens_per_s = p.tokens_per_step / p.step_s;
  p.mfu = p.tokens_per_s * gpt_flops_per_token(req.model, T, p.params_total) / (world * c.peak_tflops * 1e12);
  return p;
}

std::string format_plan(const PlanRequest& r, const Plan& p) {
  const ClusterShape& c = r.cluster;
  const int T = r.seq_len ? r.seq_len : r.model.max_seq_len;
  std::string out;
  char line[512];
  auto add = [&](const char* fmt, auto... args) {
    std::snprintf(line, sizeof line, fmt, args...);
    out += line;
  };
  add("model %s: %d layers, %d heads, %d wide, vocab %d (padded to %d), %.2fB parameters, T=%d\n",
      r.model.preset.c_str(), r.model.n_layer, r.model.n_head, r.model.n_embd, r.model.vocab_size, p.vocab_padded,
      double(p.params_total) / 1e9, T);
  add("layout tp%d × dp%d × pp%d on %d node(s) × %d GPUs (%.0f GiB; NVLink %.0f GB/s, network %.0f GB/s per GPU, "
      "α %.0f µs; %.0f TFLOP/s achievable)\n",
      r.tp, r.dp, r.pp, c.nodes, c.gpus_per_node, c.gpu_mem_gib, c.intra_bw_gbs, c.inter_bw_gbs, c.latency_us,
      c.tflops);
  add("micro-batch %d × %d micro-batches per step%s%s: %.0f tokens per step\n\n", r.micro_batch, r.grad_accum,
      r.zero1 ? ", ZeRO-1" : "", r.recompute ? ", recompute" : "", p.tokens_per_step);
  out += "per-GPU memory (GiB)  stage layers  params  grads  AdamW  arena×in-flight  activations  total  "
         "| recompute: activations  total\n";
  for (const StageMemory& s : p.stages) {
    add("%20s  %5d %6d  %6.2f %6.2f %6.2f  %7.2f × %-2d     %8.2f  %6.2f  |            %8.2f  %6.2f%s\n", "",
        s.stage, s.layers, s.params / kGiB, s.grads / kGiB, s.optimizer / kGiB, s.arena / kGiB,
        s.in_flight + (r.pp > 1 ? 1 : 0), s.activations / kGiB, s.total() / kGiB, s.activations_recompute / kGiB,
        s.total_recompute() / kGiB, s.stage == p.worst_stage ? "  ← worst" : "");
  }
  const StageMemory& w = p.stages[p.worst_stage];
  const double need = r.recompute ? w.total_recompute() : w.total();
  add("fits in %.0f GiB: %s (worst stage %.1f GiB%s)\n\n", c.gpu_mem_gib, need <= c.gpu_mem_gib * kGiB ? "yes" : "NO",
      need / kGiB, r.recompute ? ", with recompute" : "");
  add("step time (ms)  compute %.1f | TP all-reduces %.1f | pipeline sends %.1f | bubble %.1f | "
      "DP gradients %.1f (exposed %.1f) | tied embedding %.1f | AdamW %.1f\n",
      p.compute_s * 1e3, p.tp_comm_s * 1e3, p.pp_comm_s * 1e3, p.bubble_s * 1e3, p.dp_comm_s * 1e3,
      p.dp_exposed_s * 1e3, p.tie_s * 1e3, p.optimizer_s * 1e3);
  add("step %.1f ms: %.0fK tokens/s, MFU %.0f%% of %.0f TFLOP/s peak per GPU\n", p.step_s * 1e3, p.tokens_per_s / 1e3,
      p.mfu * 100, c.peak_tflops);
  return out;
}

}  // namespace ferry::parallel
