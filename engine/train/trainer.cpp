// engine/train/trainer.cpp
#include "engine/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "engine/backend.h"
#include "engine/checkpoint/atomic_file.h"
#include "engine/checkpoint/checkpoint.h"
#include "engine/device.h"
#include "base/error.h"
#include "engine/generate/sampler.h"
#include "engine/train/lr_schedule.h"
#include "kernels/matmul.h"

namespace ferry {

namespace {

namespace fs = std::filesystem;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) user_error("data.path '", path, "' cannot be read");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string format_duration(double seconds) {
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  return buf;
}

// FLOP/s of this machine's CPU matmul kernel at a large GPT-like shape, best of a few tries: the
// honest denominator of an MFU on the CPU backend (there is no datasheet peak for "2 shared cores").
// Shared or busy cores make it noisy, and a step can beat it when other work was running meanwhile.
double measure_cpu_matmul_peak() {
  const int N = 1024, IC = 512, OC = 1536;
  std::vector<float> a(size_t(N) * IC, 0.5f), w(size_t(OC) * IC, 0.25f), out(size_t(N) * OC);
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    kernels::cpu::matmul_forward<float>(out.data(), a.data(), w.data(), nullptr, N, IC, OC);
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (dt > 0) best = std::max(best, 2.0 * N * IC * OC / dt);
  }
  return best;
}

// Keeps metrics lines up to and including `step` (a resumed run rewrites what follows).
void truncate_metrics(const fs::path& file, int step) {
  std::ifstream in(file);
  if (!in) return;
  std::string kept, line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("step")) break;  // a torn last line
    if (j["step"].get<int>() > step) break;
    kept += line + "\n";
  }
  in.close();
  write_file_atomically(file, kept);
}

int kill_after_checkpoint_step() {
  const char* v = std::getenv("FERRY_TEST_KILL_AFTER_CHECKPOINT");
  return v ? std::atoi(v) : -1;
}

std::unique_ptr<BatchSource> shard_source(const RunConfig& c, StepRunner::DataShard shard, const std::string& pattern,
                                          const std::string& split, bool shuffle) {
  data::LoaderOptions o;
  o.pattern = pattern;
  o.split = split;
  o.B = c.train.batch_size;
  o.T = c.train.seq_len;
  o.dp_rank = shard.rank;
  o.dp_size = shard.size;
  o.shuffle = shuffle;
  o.seed = c.train.seed;
  o.vocab_size = c.model.vocab_size;
  return std::make_unique<ShardSource>(o);
}

// The init model's parameters, by name, into the run's flat layout: every run parameter must be in
// the model with the same size (a model's extra parameters, e.g. a task head, are not asked for).
void copy_params_by_name(const Checkpoint& model, const std::vector<ParamInfo>& layout, std::vector<float>& flat,
                         const std::string& where) {
  std::unordered_map<std::string, const CheckpointParam*> by_name;
  for (const CheckpointParam& p : model.params) by_name[p.name] = &p;
  for (const ParamInfo& p : layout) {
    const auto it = by_name.find(p.name);
    if (it == by_name.end()) user_error(where, ": the model has no parameter '", p.name, "'");
    const CheckpointParam& e = *it->second;
    if (e.numel != static_cast<uint64_t>(p.numel))
      user_error(where, ": parameter '", p.name, "' holds ", e.numel, " values, the run's ", p.numel);
    if (e.offset + e.numel > model.parameters.size())
      user_error(where, ": parameter '", p.name, "' lies outside the model's ", model.parameters.size(), " values");
    std::copy_n(model.parameters.begin() + static_cast<std::ptrdiff_t>(e.offset), p.numel,
                flat.begin() + static_cast<std::ptrdiff_t>(p.offset));
  }
}

}  // namespace

DataSources make_data_sources(const RunConfig& c, StepRunner::DataShard shard) {
  const int B = c.train.batch_size, T = c.train.seq_len;
  if (c.data.source == "shards") {
    const std::string& path = c.data.path;
    std::error_code ec;
    if (fs::is_directory(path, ec))
      return {shard_source(c, shard, path, "train", c.data.shuffle), shard_source(c, shard, path, "val", false)};
    const size_t at = path.rfind("_train_");
    if (at == std::string::npos)
      user_error("data.path '", path, "': a glob or file of shards must contain '_train_' (the validation shards are "
                 "the same name with '_val_'), or name a folder");
    std::string val = path;
    val.replace(at, 7, "_val_");
    return {shard_source(c, shard, path, "", c.data.shuffle), shard_source(c, shard, val, "", false)};
  }
  std::string text;
  if (c.data.source == "synthetic") {
    text = synthetic_corpus(2'000'000, 20240520);
  } else {
    text = read_file(c.data.path);
  }
  std::vector<int32_t> tokens = byte_tokens(text);
  const size_t n_val = static_cast<size_t>(static_cast<double>(tokens.size()) * c.data.val_fraction);
  if (n_val < static_cast<size_t>(T) + 1 || tokens.size() - n_val < static_cast<size_t>(T) + 1)
    user_error("data: ", tokens.size(), " tokens are too few for a train/validation split at seq_len ", T);
  std::vector<int32_t> val(tokens.end() - static_cast<std::ptrdiff_t>(n_val), tokens.end());
  tokens.resize(tokens.size() - n_val);
  return {std::make_unique<TokenStreamSource>(std::move(tokens), B, T, shard.rank, shard.size),
          std::make_unique<TokenStreamSource>(std::move(val), B, T, shard.rank, shard.size)};
}

namespace {

TrainSummary run(const RunConfig& c, DataSources* given, const PretrainOptions& o) {
  validate_run_config(c);
  if (o.init && !o.resume.empty())
    user_error("a run either starts from a model's weights (", o.init_source, ") or resumes a checkpoint, not both");
  const TrainConfig& t = c.train;
  auto backend = make_backend(t.device);

  if (!o.make_step) user_error("pretrain: no step factory given (PretrainOptions::make_step)");
  GptStep gpt = o.make_step(c, *backend);
  StepRunner& step = *gpt.runner;
  const bool out = step.writes_output();
  if (out) std::fprintf(stderr, "ferry: %s\n", device_summary().c_str());
  DataSources data = given ? std::move(*given) : make_data_sources(c, step.data_shard());
  const int64_t n_params = gpt.n_params;
  nlohmann::json init_source;  // the model the run started from (checkpoints carry it on)
  if (o.init) {
    const std::string where = o.init_source.empty() ? "init model" : o.init_source;
    if (const std::string d = model_difference(o.init->model, c.model); !d.empty())
      user_error(where, ": the model is another architecture than the run's (", d, ", model vs run)");
    std::vector<float> flat(static_cast<size_t>(n_params));
    copy_params_by_name(*o.init, gpt.params, flat, where);
    step.set_parameters(flat);
    init_source = where;
    if (out) std::fprintf(stderr, "ferry: starting from the weights of %s (step 0, fresh optimizer)\n", where.c_str());
  } else {
    Graph layout;  // init_gpt_params reads names and offsets only
    layout.params = gpt.params;
    std::vector<double> init;
    init_gpt_params(layout, c.model, t.seed, init);
    step.set_parameters(std::vector<float>(init.begin(), init.end()));
  }

  // ---- resume -------------------------------------------------------------------------------
  const fs::path out_dir(t.out_dir), ckpt_dir = checkpoint_dir(c), metrics_file = out_dir / "metrics.jsonl";
  fs::path resume_file;
  if (o.resume == "auto") {
    const auto found = list_checkpoints(ckpt_dir);
    if (!found.empty()) resume_file = found.back().second;
  } else if (!o.resume.empty()) {
    resume_file = o.resume;
  }
  TrainSummary summary;
  Rng sample_rng(t.seed ^ 0x5A4D504C45ull);  // "SAMPLE": the sampler's own stream
  int first_step = 1;
  if (!resume_file.empty()) {
    const Checkpoint ck = read_checkpoint(resume_file);
    const std::string where = resume_file.string();
    if (const std::string d = model_difference(ck.model, c.model); !d.empty())
      user_error(where, ": checkpoint is for another model (", d, ")");
    if (ck.params.size() != gpt.params.size()) user_error(where, ": checkpoint has another parameter table");
    for (size_t i = 0; i < ck.params.size(); ++i)
      if (ck.params[i].name != gpt.params[i].name || ck.params[i].offset != gpt.params[i].offset)
        user_error(where, ": parameter ", i, " is '", ck.params[i].name, "' there, '", gpt.params[i].name, "' here");
    if (ck.adam_m.empty()) user_error(where, ": holds no optimizer state (an imported model), so a run cannot resume it");
    try {
      const auto& rc = ck.state.at("run_config").at("train");
      if (rc.at("seq_len").get<int>() != t.seq_len)
        user_error(where, ": train.seq_len ", rc.at("seq_len").get<int>(), " there, ", t.seq_len, " here");
      if (ck.step > t.max_steps) user_error(where, ": at step ", ck.step, ", past train.max_steps (", t.max_steps, ")");
      step.set_parameters(ck.parameters);
      step.set_optimizer_state(OptimizerState{static_cast<int>(ck.adam_steps), ck.adam_m, ck.adam_v});
      data.train->restore(ck.state.at("data").at("train"));
      sample_rng.set_state(ck.state.at("rng").at("sample").get<uint64_t>());
      if (ck.state.contains("initial_val_loss") && ck.state["initial_val_loss"].is_number())
        summary.initial_val_loss = ck.state["initial_val_loss"].get<double>();
      if (ck.state.contains("init")) init_source = ck.state["init"];
    } catch (const nlohmann::json::exception& e) {
      user_error(where, ": checkpoint trainer state is malformed (", e.what(), ")");
    }
    first_step = static_cast<int>(ck.step) + 1;
    summary.resumed_from = static_cast<int>(ck.step);
    if (out) std::fprintf(stderr, "ferry: resuming from %s (step %lld)\n", where.c_str(), (long long)ck.step);
  }

  std::ofstream metrics;
  if (out) {
    fs::create_directories(out_dir);
    write_file_atomically(out_dir / "config.json", to_json(c).dump(2) + "\n");
    if (first_step > 1) truncate_metrics(metrics_file, first_step - 1);
    metrics.open(metrics_file, first_step > 1 ? std::ios::app : std::ios::trunc);
    if (!metrics) user_error("train.out_dir '", t.out_dir, "': cannot write metrics.jsonl");
  }

  const double flops_per_token = gpt_flops_per_token(c.model, t.seq_len, n_params);
  const bool on_cpu = backend->device() == Device::CPU;
  // Re-measured at every validation, keeping the best: on shared cores the first figure may have
  // been taken while other work ran.
  double peak = on_cpu ? measure_cpu_matmul_peak() : 0;
  if (out)
    std::fprintf(stderr,
                 "ferry: model %s: %d layers, %d heads, %d wide, vocab %d: %.2fM parameters; batch %d x %d x %d "
                 "accum; activations %s planned (%s unshared, %.1fx less)%s\n",
                 c.model.preset.c_str(), c.model.n_layer, c.model.n_head, c.model.n_embd, c.model.vocab_size,
                 double(n_params) / 1e6, t.batch_size, t.seq_len, t.grad_accum,
                 format_bytes(double(step.arena_bytes())).c_str(), format_bytes(double(step.unshared_bytes())).c_str(),
                 double(step.unshared_bytes()) / double(std::max<size_t>(1, step.arena_bytes())),
                 on_cpu ? ("; MFU against this CPU's measured matmul peak, " + std::to_string(int(peak / 1e9)) +
                           " GFLOP/s")
                              .c_str()
                        : "");

  const size_t bt = static_cast<size_t>(t.batch_size) * t.seq_len;
  auto next_batch = [&](BatchSource& src) {
    Batch b;
    std::vector<int32_t> inputs(bt), targets(bt);
    src.next(inputs.data(), targets.data());
    b.inputs.emplace_back(gpt.tokens, std::move(inputs));
    b.inputs.emplace_back(gpt.targets, std::move(targets));
    return b;
  };
  auto evaluate = [&]() {
    data.val->reset();
    double sum = 0;
    for (int i = 0; i < t.eval_batches; ++i) sum += step.evaluate(next_batch(*data.val));
    return sum / t.eval_batches;
  };

  // Samples: the output rank decodes; every rank takes part in parameters() (a gather when sharded).
  std::unique_ptr<Generator> generator;
  auto sample = [&](int s) {
    const std::vector<float> params = step.parameters();
    if (!out) return;
    if (!generator) generator = std::make_unique<Generator>(c.model, *backend, c.model.max_seq_len);
    generator->set_parameters(params);
    std::vector<int32_t> prompt;
    if (o.encode) {
      prompt = o.encode(t.sample_prompt);
    } else {
      for (unsigned char ch : t.sample_prompt) prompt.push_back(ch);
    }
    if (prompt.empty()) prompt.push_back(0);
    SamplingOptions so;
    so.max_new_tokens = t.sample_tokens;
    so.top_k = 40;
    const std::vector<int32_t> ids = generator->generate(prompt, so, sample_rng);
    std::string text;
    if (o.decode) {
      text = o.decode(ids);
    } else {
      for (int32_t id : ids) text.push_back(static_cast<char>(id));
    }
    std::fprintf(stderr, "sample @ step %d | %s%s\n", s, t.sample_prompt.c_str(), text.c_str());
  };

  auto save = [&](int s) {
    Checkpoint ck;
    ck.parameters = step.parameters();
    OptimizerState os = step.optimizer_state();
    if (!out) return;
    ck.step = s;
    ck.model = c.model;
    for (const ParamInfo& p : gpt.params)
      ck.params.push_back({p.name, static_cast<uint64_t>(p.offset), static_cast<uint64_t>(p.numel)});
    ck.adam_steps = os.steps;
    ck.adam_m = std::move(os.m);
    ck.adam_v = std::move(os.v);
    ck.state = {{"run_config", to_json(c)},
                {"schedule",
                 {{"next_step", s + 1},
                  {"max_steps", t.max_steps},
                  {"warmup_steps", t.warmup_steps},
                  {"lr", t.lr},
                  {"min_lr", t.min_lr}}},
                {"rng", {{"sample", sample_rng.state()}}},
                {"data", {{"train", data.train->position()}, {"val", data.val->position()}}},
                {"initial_val_loss", std::isnan(summary.initial_val_loss) ? nlohmann::json(nullptr)
                                                                          : nlohmann::json(summary.initial_val_loss)}};
    if (!init_source.is_null()) ck.state["init"] = init_source;
    const fs::path file = checkpoint_file(ckpt_dir, s);
    write_checkpoint(file, ck);
    prune_checkpoints(ckpt_dir, t.keep_checkpoints);
    std::fprintf(stderr, "ferry: checkpoint %s\n", file.c_str());
    if (kill_after_checkpoint_step() == s) {
      metrics.flush();
      std::raise(SIGKILL);
    }
  };

  summary.arena_bytes = step.arena_bytes();
  summary.unshared_bytes = step.unshared_bytes();
  if (t.eval_every > 0 && first_step == 1) {
    summary.initial_val_loss = evaluate();
    if (out) {
      nlohmann::json line = {{"step", 0}, {"val_loss", summary.initial_val_loss}};
      metrics << line.dump() << "\n";
      metrics.flush();
      std::fprintf(stderr, "step %5d/%d | val loss %.4f\n", 0, t.max_steps, summary.initial_val_loss);
    }
  }

  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  double train_seconds = 0;
  for (int s = first_step; s <= t.max_steps; ++s) {
    const auto t0 = clock::now();
    const float lr = learning_rate(s - 1, t.max_steps, t.warmup_steps, t.lr, t.min_lr);
    std::vector<Batch> micro;
    for (int k = 0; k < t.grad_accum; ++k) micro.push_back(next_batch(*data.train));
    const StepResult r = step.train(micro, lr);
    if (!std::isfinite(r.loss)) user_error("training diverged at step ", s, ": loss is ", r.loss, " (lower train.lr)");
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    train_seconds += dt;
    const double tok_s = double(bt) * t.grad_accum * step.data_shard().size / dt;
    const double mfu = peak > 0 ? tok_s * flops_per_token / peak : 0;

    // Timing fields (tokens_per_s, mfu) are the only ones that differ between two runs of one seed.
    nlohmann::json line = {{"step", s}, {"train_loss", r.loss}, {"lr", lr}, {"grad_norm", r.grad_norm},
                           {"tokens_per_s", tok_s}};
    if (peak > 0) line["mfu"] = mfu;
    const bool eval_now = t.eval_every > 0 && (s % t.eval_every == 0 || s == t.max_steps);
    if (eval_now) {
      summary.final_val_loss = evaluate();
      line["val_loss"] = summary.final_val_loss;
      if (on_cpu) peak = std::max(peak, measure_cpu_matmul_peak());
    }
    summary.final_train_loss = r.loss;
    summary.steps = s;
    if (out) {
      metrics << line.dump() << "\n";
      metrics.flush();
      if (s % t.log_every == 0 || s == first_step || s == t.max_steps || eval_now) {
        const double elapsed = std::chrono::duration<double>(clock::now() - start).count();
        const double eta = elapsed / (s - first_step + 1) * (t.max_steps - s);
        std::string val = eval_now ? " | val loss " + std::to_string(summary.final_val_loss) : "";
        std::string mfu_text = peak > 0 ? " | MFU " + std::to_string(int(std::lround(mfu * 100))) + "%" : "";
        std::fprintf(stderr, "step %5d/%d | loss %.4f | lr %.2e | norm %.3f | %.1fK tok/s%s | ETA %s%s\n", s,
                     t.max_steps, r.loss, lr, r.grad_norm, tok_s / 1e3, mfu_text.c_str(),
                     format_duration(eta).c_str(), val.c_str());
      }
      if (eval_now && o.on_metrics) o.on_metrics(metrics_file);
    }
    if (t.sample_every > 0 && (s % t.sample_every == 0 || s == t.max_steps)) sample(s);
    if (t.checkpoint_every > 0 && (s % t.checkpoint_every == 0 || s == t.max_steps)) save(s);
  }
  const int ran = summary.steps - first_step + 1;
  summary.tokens_per_s = train_seconds > 0 ? double(bt) * t.grad_accum * step.data_shard().size * std::max(ran, 0) /
                                                 train_seconds
                                           : 0;
  if (out) {
    if (o.on_metrics) o.on_metrics(metrics_file);
    std::fprintf(stderr, "ferry: done: %d steps, %.1fK tok/s, metrics in %s\n", summary.steps,
                 summary.tokens_per_s / 1e3, metrics_file.c_str());
  }
  return summary;
}

}  // namespace

TrainSummary pretrain(const RunConfig& c, const PretrainOptions& o) { return run(c, nullptr, o); }

TrainSummary pretrain(const RunConfig& c, DataSources data, const PretrainOptions& o) { return run(c, &data, o); }

}  // namespace ferry
