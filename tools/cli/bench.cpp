// tools/cli/bench.cpp — `ferry bench train`: end-to-end training throughput of a GPT preset on
// random tokens (nothing read from disk), for issue [speed].
//
//   ferry bench train --model gpt2-124m,gpt2-350m --batch 16 --seq-len 1024 [--steps 20 --warmup 5]
//                     [--sweep] [--profile] [--device auto|cpu|cuda] [--json out.json]
//
// Per shape: warm-up steps (on CUDA the first is eager and the second captures the step graph),
// then ≥ 1 timed steps, each timed on the backend's own queue (CUDA events; steady clock on the
// CPU) from the moment the host starts it to the moment the next one starts, so the host's share
// of a step counts; the median is reported with tokens/s, MFU against the dense-matmul rate
// measured in the same process (gpt_flops_per_token: 6·N + 6·L·T·C), and memory (the planner's
// figures and, on CUDA, what the run took from the device). --sweep adds B=8 and B=32 at the same
// T, and B=8, 16 at 2·T (positions extended past the preset's when needed); a shape that does not
// fit is reported as skipped. --profile runs one more step eagerly and times every node: the time
// per op, its share, and the launches per step. On the CPU the same code runs (tiny presets), bf16
// is CUDA only: the CPU runs fp32.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/backend.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/queue_clock.h"
#include "engine/device.h"
#include "base/error.h"
#include "engine/model/gpt.h"
#include "engine/planner.h"
#include "engine/train/step.h"
#include "tools/cli/command.h"
#include "parallel/step_factory.h"

namespace {

using ferry::user_error;
using json = nlohmann::json;

struct BenchArgs {
  std::vector<std::string> models{"gpt2-124m"};
  int batch = 16;
  int seq_len = 1024;
  int steps = 20;
  int warmup = 5;
  bool sweep = false;
  bool profile = false;
  std::string device = "auto";
  std::string json_path;
  uint64_t seed = 1;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::unique_ptr<ferry::Backend> pick_backend(const std::string& device) {
  if (device == "cpu") return ferry::make_cpu_backend();
  if (device == "cuda") return ferry::make_cuda_backend();
  if (device == "auto")
    return ferry::cuda_backend_built() && ferry::cuda_device_count() > 0 ? ferry::make_cuda_backend()
                                                                         : ferry::make_cpu_backend();
  user_error("--device must be auto, cpu or cuda, got '", device, "'");
}

ferry::Batch random_batch(const ferry::GptGraph& m, int vocab, std::mt19937_64& rng) {
  std::uniform_int_distribution<int32_t> tok(0, vocab - 1);
  const size_t n = static_cast<size_t>(ferry::numel(m.graph.values[m.tokens].shape));
  std::vector<int32_t> tokens(n), targets(n);
  for (auto& t : tokens) t = tok(rng);
  for (auto& t : targets) t = tok(rng);
  ferry::Batch b;
  b.inputs = {{m.tokens, std::move(tokens)}, {m.targets, std::move(targets)}};
  return b;
}

// One shape, measured. Returns its JSON record (status "ok" or why it was skipped).
json bench_shape(ferry::Backend& backend, const BenchArgs& a, const std::string& model, int B, int T,
                 const ferry::MatmulCeiling& ceiling, bool may_skip) {
  using namespace ferry;
  const bool on_cuda = backend.device() == Device::CUDA;
  GptConfig cfg = gpt_preset(model);
  const bool extended = T > cfg.max_seq_len;
  if (extended) cfg.max_seq_len = T;
  json r = {{"model", model}, {"batch", B}, {"seq_len", T}, {"dtype", on_cuda ? "bf16" : "f32"},
            {"positions_extended", extended}};
  GptBuildOptions o;
  o.batch = B;
  o.seq_len = T;
  o.dtype = on_cuda ? DType::BF16 : DType::F32;
  GptGraph m = build_gpt(cfg, o);
  std::vector<double> init;
  init_gpt_params(m.graph, cfg, a.seed, init);
  const int64_t n_params = m.graph.param_count();
  std::mt19937_64 rng(a.seed + 17);
  std::vector<Batch> batches;
  for (int i = 0; i < 2; ++i) batches.push_back(random_batch(m, cfg.vocab_size, rng));

  const size_t in_use_before = device_memory_in_use(backend);
  std::unique_ptr<ferry::parallel::Runner> step;
  try {
    step = ferry::parallel::make_local_runner(std::move(m.graph), backend, AdamWConfig{});
  } catch (const UserError& e) {
    if (!may_skip) throw;
    r["status"] = std::string("skipped: ") + e.what();
    return r;
  }
  step->set_parameters(std::vector<float>(init.begin(), init.end()));
  const float lr = 3e-4f;
  // On CUDA the first step runs eagerly and the second captures the step graph: neither is timed.
  const int warmup = std::max(a.warmup, on_cuda ? 2 : 1);
  double first_loss = 0;
  for (int i = 0; i < warmup; ++i) {
    const double loss = step->train({batches[i % 2]}, lr).loss;
    if (i == 0) first_loss = loss;
  }
  QueueClock clock(backend);
  double last_loss = 0;
  clock.mark();
  for (int i = 0; i < a.steps; ++i) {
    last_loss = step->train({batches[i % 2]}, lr).loss;
    clock.mark();
  }
  const std::vector<double> ms = clock.intervals_ms();
  const size_t in_use_after = device_memory_in_use(backend);
  if (!std::isfinite(last_loss)) user_error("bench: the loss became ", last_loss, " (", model, ")");

  const double med = median(ms);
  const double tokens_per_s = double(B) * T / (med * 1e-3);
  const double flops_per_token = gpt_flops_per_token(cfg, T, n_params);
  const Graph& g = step->graph();
  const MemoryPlan& plan = step->executor().plan();
  const size_t optimizer_bytes = on_cuda ? 3 * size_t(n_params) * sizeof(float) : 2 * size_t(n_params) * sizeof(float);
  r["status"] = "ok";
  r["params"] = n_params;
  r["steps"] = a.steps;
  r["warmup"] = warmup;
  r["ms_per_step"] = med;
  r["ms_min"] = *std::min_element(ms.begin(), ms.end());
  r["ms_max"] = *std::max_element(ms.begin(), ms.end());
  r["tokens_per_s"] = tokens_per_s;
  r["flops_per_token"] = flops_per_token;
  r["mfu"] = ceiling.tflops > 0 ? tokens_per_s * flops_per_token / (ceiling.tflops * 1e12) : 0.0;
  r["loss_first"] = first_loss;
  r["loss_last"] = last_loss;
  r["arena_bytes"] = plan.arena_bytes;
  r["param_bytes"] = plan.param_bytes;
  r["grad_bytes"] = plan.param_bytes;
  r["optimizer_bytes"] = optimizer_bytes;
  r["planned_bytes"] = plan.arena_bytes + 2 * plan.param_bytes + optimizer_bytes;
  r["device_in_use_bytes"] = in_use_after;
  r["run_device_bytes"] = in_use_after > in_use_before ? in_use_after - in_use_before : 0;
  r["graph_ops"] = g.nodes.size();
  r["replayed_graph_nodes"] = step->graph_nodes();

  if (a.profile) {
    // One eager step, a mark after every node: interval 0 also holds the input upload and the
    // gradient zeroing; the last one is the optimizer (grad norm, clipping, AdamW) and the copy-out.
    step->set_graph_replay(false);
    QueueClock per_node(backend);
    step->executor().set_after_node([&](int) { per_node.mark(); });
    per_node.mark();
    step->train({batches[0]}, lr);
    per_node.mark();
    step->executor().set_after_node({});
    step->set_graph_replay(true);
    const std::vector<double> t = per_node.intervals_ms();
    FERRY_CHECK(t.size() == g.nodes.size() + 1, "profile marks: ", t.size(), " intervals for ", g.nodes.size(),
                " nodes");
    std::map<std::string, std::pair<int, double>> by_op;
    double total = 0;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      auto& e = by_op[g.nodes[i].op];
      e.first += 1;
      e.second += t[i];
      total += t[i];
    }
    by_op["optimizer (grad norm + AdamW)"] = {1, t.back()};
    total += t.back();
    json prof = json::array();
    std::vector<std::pair<std::string, std::pair<int, double>>> rows(by_op.begin(), by_op.end());
    std::sort(rows.begin(), rows.end(), [](auto& x, auto& y) { return x.second.second > y.second.second; });
    for (const auto& [op, e] : rows)
      prof.push_back({{"op", op}, {"nodes", e.first}, {"ms", e.second}, {"share", total > 0 ? e.second / total : 0.0}});
    r["profile"] = {{"eager_step_ms", total}, {"ops", prof}};
  }
  return r;
}

void print_run(const json& r, const ferry::MatmulCeiling& ceiling) {
  std::printf("%s B=%d T=%d %s", r["model"].get<std::string>().c_str(), r["batch"].get<int>(),
              r["seq_len"].get<int>(), r["dtype"].get<std::string>().c_str());
  if (r["status"] != "ok") {
    std::printf(": %s\n", r["status"].get<std::string>().c_str());
    return;
  }
  const double gib = double(1ull << 30);
  std::printf("%s\n", r["positions_extended"].get<bool>() ? " (positions extended)" : "");
  std::printf("  ms/step      %.3f (median of %d; min %.3f, max %.3f)\n", r["ms_per_step"].get<double>(),
              r["steps"].get<int>(), r["ms_min"].get<double>(), r["ms_max"].get<double>());
  std::printf("  tokens/s     %.0f\n", r["tokens_per_s"].get<double>());
  std::printf("  MFU          %.4f (of %.2f TFLOP/s measured)\n", r["mfu"].get<double>(), ceiling.tflops);
  std::printf("  loss         %.4f -> %.4f\n", r["loss_first"].get<double>(), r["loss_last"].get<double>());
  std::printf("  memory       planned %.3f GiB (activations %.3f, parameters %.3f, gradients %.3f, optimizer %.3f)",
              r["planned_bytes"].get<double>() / gib, r["arena_bytes"].get<double>() / gib,
              r["param_bytes"].get<double>() / gib, r["grad_bytes"].get<double>() / gib,
              r["optimizer_bytes"].get<double>() / gib);
  if (r["run_device_bytes"].get<size_t>() > 0)
    std::printf("; taken from the device %.3f GiB (in use %.3f GiB)", r["run_device_bytes"].get<double>() / gib,
                r["device_in_use_bytes"].get<double>() / gib);
  std::printf("\n  launches     %zu graph ops per step", r["graph_ops"].get<size_t>());
  if (r["replayed_graph_nodes"].get<size_t>() > 0)
    std::printf("; %zu CUDA graph nodes replayed per step", r["replayed_graph_nodes"].get<size_t>());
  std::printf("\n");
  if (r.contains("profile")) {
    std::printf("  profile      one eager step %.3f ms\n", r["profile"]["eager_step_ms"].get<double>());
    for (const json& p : r["profile"]["ops"])
      std::printf("    %-32s %4d nodes %10.3f ms %6.1f%%\n", p["op"].get<std::string>().c_str(), p["nodes"].get<int>(),
                  p["ms"].get<double>(), 100.0 * p["share"].get<double>());
  }
}

void run(const BenchArgs& a) {
  if (a.steps < 1) user_error("--steps must be at least 1, got ", a.steps);
  if (a.warmup < 0) user_error("--warmup must be at least 0, got ", a.warmup);
  if (a.batch < 1) user_error("--batch must be at least 1, got ", a.batch);
  if (a.seq_len < 1) user_error("--seq-len must be at least 1, got ", a.seq_len);
  for (const auto& m : a.models) ferry::gpt_preset(m);  // unknown presets fail before any work
  auto backend = pick_backend(a.device);
  std::fprintf(stderr, "ferry: %s\n", ferry::device_summary().c_str());
  const ferry::MatmulCeiling ceiling = ferry::measure_matmul_ceiling(*backend);
  std::printf("ferry bench train on %s (%s)\n", backend->name().c_str(), ferry::device_summary().c_str());
  std::printf("matmul ceiling %.2f TFLOP/s (%s)\n", ceiling.tflops, ceiling.what.c_str());

  std::vector<std::pair<int, int>> shapes{{a.batch, a.seq_len}};
  if (a.sweep)
    for (std::pair<int, int> s : {std::pair{8, a.seq_len}, {32, a.seq_len}, {8, 2 * a.seq_len}, {16, 2 * a.seq_len}})
      if (std::find(shapes.begin(), shapes.end(), s) == shapes.end()) shapes.push_back(s);
  json out = {{"device", ferry::device_summary()},
              {"backend", backend->name()},
              {"matmul_ceiling_tflops", ceiling.tflops},
              {"matmul_ceiling", ceiling.what},
              {"runs", json::array()}};
  for (const auto& model : a.models) {
    for (size_t i = 0; i < shapes.size(); ++i) {
      // The requested shape must run; the sweep's extra shapes may not fit.
      json r = bench_shape(*backend, a, model, shapes[i].first, shapes[i].second, ceiling, a.sweep);
      print_run(r, ceiling);
      std::fflush(stdout);
      out["runs"].push_back(r);
    }
  }
  if (!a.json_path.empty()) {
    std::ofstream f(a.json_path);
    if (!f) user_error("--json: cannot write ", a.json_path);
    f << out.dump(1) << "\n";
  }
}

void setup(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  app.require_subcommand(1);
  CLI::App* train = app.add_subcommand("train", "Training throughput of a GPT preset on random tokens");
  train->add_option("--model", a->models, "preset(s), comma-separated (gpt2-124m, gpt2-350m, tiny, micro, …)")
      ->delimiter(',')
      ->capture_default_str();
  train->add_option("--batch", a->batch, "sequences per step")->capture_default_str();
  train->add_option("--seq-len", a->seq_len, "tokens per sequence")->capture_default_str();
  train->add_option("--steps", a->steps, "timed steps (the median is reported)")->capture_default_str();
  train->add_option("--warmup", a->warmup, "untimed steps first (at least 2 on CUDA: eager, capture)")
      ->capture_default_str();
  train->add_flag("--sweep", a->sweep, "also B=8 and 32 at the same T, and B=8, 16 at 2·T, where memory allows");
  train->add_flag("--profile", a->profile, "time every node of one eager step: ms and share per op");
  train->add_option("--device", a->device, "auto, cpu or cuda")->capture_default_str();
  train->add_option("--json", a->json_path, "write the figures as JSON here");
  train->add_option("--seed", a->seed, "initialization and token seed")->capture_default_str();
  train->callback([a] { run(*a); });
}

}  // namespace

FERRY_COMMAND(bench, "bench", "Benchmarks: `ferry bench train` (end-to-end training throughput)", setup);
