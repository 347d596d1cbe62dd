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
#include "engine/train/loop.h"
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

// One pretraining run, in named pieces: the run is built (step runner, data, starting weights),
// resumed if asked, its outputs opened; then the loop calls train_step (engine/train/loop.h) and,
// when due, evaluate, sample and save_checkpoint, and reports each step (metrics line, progress).
class PretrainRun {
 public:
  PretrainRun(const RunConfig& c, DataSources* given, const PretrainOptions& o)
      : c_(c), t_(c.train), o_(o), backend_(make_backend(t_.device)), gpt_(o.make_step(c, *backend_)),
        step_(*gpt_.runner), out_(step_.writes_output()), sample_rng_(t_.seed ^ 0x5A4D504C45ull) {  // "SAMPLE"
    if (out_) std::fprintf(stderr, "ferry: %s\n", device_summary().c_str());
    data_ = given ? std::move(*given) : make_data_sources(c, step_.data_shard());
    if (o.init) {
      start_from_model();
    } else {
      start_seeded();
    }
    resume();
    open_outputs();
    print_banner();
  }

  TrainSummary run();

 private:
  void start_from_model();
  void start_seeded();
  void resume();
  void open_outputs();
  void print_banner();
  Batch next_batch(BatchSource& src) const;
  double evaluate();
  void sample(int s);
  void save_checkpoint(int s);
  void report(int s, const ScheduledStep& r, double step_seconds, bool evaluated, const Pace& pace);

  const RunConfig& c_;
  const TrainConfig& t_;
  const PretrainOptions& o_;
  std::unique_ptr<Backend> backend_;
  GptStep gpt_;
  StepRunner& step_;
  const bool out_;  // this rank writes files and the terminal
  DataSources data_;
  Rng sample_rng_;  // the sampler's own stream
  nlohmann::json init_source_;  // the model the run started from (checkpoints carry it on)
  int first_step_ = 1;
  TrainSummary summary_;
  fs::path metrics_file_;
  std::ofstream metrics_;
  double peak_ = 0;  // the CPU's measured matmul FLOP/s (0: no MFU)
  std::unique_ptr<Generator> generator_;
};

void PretrainRun::start_from_model() {
  const std::string where = o_.init_source.empty() ? "init model" : o_.init_source;
  if (const std::string d = model_difference(o_.init->model, c_.model); !d.empty())
    user_error(where, ": the model is another architecture than the run's (", d, ", model vs run)");
  std::vector<float> flat(static_cast<size_t>(gpt_.n_params));
  copy_params_by_name(*o_.init, gpt_.params, flat, where);
  step_.set_parameters(flat);
  init_source_ = where;
  if (out_) std::fprintf(stderr, "ferry: starting from the weights of %s (step 0, fresh optimizer)\n", where.c_str());
}

void PretrainRun::start_seeded() {
  Graph layout;  // init_gpt_params reads names and offsets only
  layout.params = gpt_.params;
  std::vector<double> init;
  init_gpt_params(layout, c_.model, t_.seed, init);
  step_.set_parameters(std::vector<float>(init.begin(), init.end()));
}

void PretrainRun::resume() {
  fs::path file;
  if (o_.resume == "auto") {
    const auto found = list_checkpoints(checkpoint_dir(c_));
    if (!found.empty()) file = found.back().second;
  } else if (!o_.resume.empty()) {
    file = o_.resume;
  }
  if (file.empty()) return;
  const Checkpoint ck = read_checkpoint(file);
  const std::string where = file.string();
  if (const std::string d = model_difference(ck.model, c_.model); !d.empty())
    user_error(where, ": checkpoint is for another model (", d, ")");
  if (ck.params.size() != gpt_.params.size()) user_error(where, ": checkpoint has another parameter table");
  for (size_t i = 0; i < ck.params.size(); ++i)
    if (ck.params[i].name != gpt_.params[i].name || ck.params[i].offset != gpt_.params[i].offset)
      user_error(where, ": parameter ", i, " is '", ck.params[i].name, "' there, '", gpt_.params[i].name, "' here");
  if (ck.adam_m.empty()) user_error(where, ": holds no optimizer state (an imported model), so a run cannot resume it");
  try {
    const auto& rc = ck.state.at("run_config").at("train");
    if (rc.at("seq_len").get<int>() != t_.seq_len)
      user_error(where, ": train.seq_len ", rc.at("seq_len").get<int>(), " there, ", t_.seq_len, " here");
    if (ck.step > t_.max_steps) user_error(where, ": at step ", ck.step, ", past train.max_steps (", t_.max_steps, ")");
    step_.set_parameters(ck.parameters);
    step_.set_optimizer_state(OptimizerState{static_cast<int>(ck.adam_steps), ck.adam_m, ck.adam_v});
    data_.train->restore(ck.state.at("data").at("train"));
    sample_rng_.set_state(ck.state.at("rng").at("sample").get<uint64_t>());
    if (ck.state.contains("initial_val_loss") && ck.state["initial_val_loss"].is_number())
      summary_.initial_val_loss = ck.state["initial_val_loss"].get<double>();
    if (ck.state.contains("init")) init_source_ = ck.state["init"];
  } catch (const nlohmann::json::exception& e) {
    user_error(where, ": checkpoint trainer state is malformed (", e.what(), ")");
  }
  first_step_ = static_cast<int>(ck.step) + 1;
  summary_.resumed_from = static_cast<int>(ck.step);
  if (out_) std::fprintf(stderr, "ferry: resuming from %s (step %lld)\n", where.c_str(), (long long)ck.step);
}

void PretrainRun::open_outputs() {
  const fs::path out_dir(t_.out_dir);
  metrics_file_ = out_dir / "metrics.jsonl";
  if (!out_) return;
  fs::create_directories(out_dir);
  write_file_atomically(out_dir / "config.json", to_json(c_).dump(2) + "\n");
  if (first_step_ > 1) truncate_metrics(metrics_file_, first_step_ - 1);
  metrics_.open(metrics_file_, first_step_ > 1 ? std::ios::app : std::ios::trunc);
  if (!metrics_) user_error("train.out_dir '", t_.out_dir, "': cannot write metrics.jsonl");
}

void PretrainRun::print_banner() {
  // Re-measured at every validation, keeping the best: on shared cores the first figure may have
  // been taken while other work ran.
  const bool on_cpu = backend_->device() == Device::CPU;
  peak_ = on_cpu ? measure_cpu_matmul_peak() : 0;
  if (!out_) return;
  std::fprintf(stderr,
               "ferry: model %s: %d layers, %d heads, %d wide, vocab %d: %.2fM parameters; batch %d x %d x %d "
               "accum; activations %s planned (%s unshared, %.1fx less)%s\n",
               c_.model.preset.c_str(), c_.model.n_layer, c_.model.n_head, c_.model.n_embd, c_.model.vocab_size,
               double(gpt_.n_params) / 1e6, t_.batch_size, t_.seq_len, t_.grad_accum,
               format_bytes(double(step_.arena_bytes())).c_str(), format_bytes(double(step_.unshared_bytes())).c_str(),
               double(step_.unshared_bytes()) / double(std::max<size_t>(1, step_.arena_bytes())),
               on_cpu ? ("; MFU against this CPU's measured matmul peak, " + std::to_string(int(peak_ / 1e9)) +
                         " GFLOP/s")
                            .c_str()
                      : "");
}

Batch PretrainRun::next_batch(BatchSource& src) const {
  const size_t bt = static_cast<size_t>(t_.batch_size) * t_.seq_len;
  Batch b;
  std::vector<int32_t> inputs(bt), targets(bt);
  src.next(inputs.data(), targets.data());
  b.inputs.emplace_back(gpt_.tokens, std::move(inputs));
  b.inputs.emplace_back(gpt_.targets, std::move(targets));
  return b;
}

double PretrainRun::evaluate() {
  data_.val->reset();
  double sum = 0;
  for (int i = 0; i < t_.eval_batches; ++i) sum += step_.evaluate(next_batch(*data_.val));
  return sum / t_.eval_batches;
}

// The output rank decodes; every rank takes part in parameters() (a gather when sharded).
void PretrainRun::sample(int s) {
  const std::vector<float> params = step_.parameters();
  if (!out_) return;
  if (!generator_) generator_ = std::make_unique<Generator>(c_.model, *backend_, c_.model.max_seq_len);
  generator_->set_parameters(params);
  std::vector<int32_t> prompt;
  if (o_.encode) {
    prompt = o_.encode(t_.sample_prompt);
  } else {
    for (unsigned char ch : t_.sample_prompt) prompt.push_back(ch);
  }
  if (prompt.empty()) prompt.push_back(0);
  SamplingOptions so;
  so.max_new_tokens = t_.sample_tokens;
  so.top_k = 40;
  const std::vector<int32_t> ids = generator_->generate(prompt, so, sample_rng_);
  std::string text;
  if (o_.decode) {
    text = o_.decode(ids);
  } else {
    for (int32_t id : ids) text.push_back(static_cast<char>(id));
  }
  std::fprintf(stderr, "sample @ step %d | %s%s\n", s, t_.sample_prompt.c_str(), text.c_str());
}

// Every rank takes part in gathering the parameters and optimizer state; the output rank writes.
void PretrainRun::save_checkpoint(int s) {
  Checkpoint ck;
  ck.parameters = step_.parameters();
  OptimizerState os = step_.optimizer_state();
  if (!out_) return;
  ck.step = s;
  ck.model = c_.model;
  for (const ParamInfo& p : gpt_.params)
    ck.params.push_back({p.name, static_cast<uint64_t>(p.offset), static_cast<uint64_t>(p.numel)});
  ck.adam_steps = os.steps;
  ck.adam_m = std::move(os.m);
  ck.adam_v = std::move(os.v);
  ck.state = {{"run_config", to_json(c_)},
              {"schedule",
               {{"next_step", s + 1},
                {"max_steps", t_.max_steps},
                {"warmup_steps", t_.warmup_steps},
                {"lr", t_.lr},
                {"min_lr", t_.min_lr}}},
              {"rng", {{"sample", sample_rng_.state()}}},
              {"data", {{"train", data_.train->position()}, {"val", data_.val->position()}}},
              {"initial_val_loss", std::isnan(summary_.initial_val_loss) ? nlohmann::json(nullptr)
                                                                         : nlohmann::json(summary_.initial_val_loss)}};
  if (!init_source_.is_null()) ck.state["init"] = init_source_;
  const fs::path dir = checkpoint_dir(c_);
  const fs::path file = checkpoint_file(dir, s);
  write_checkpoint(file, ck);
  prune_checkpoints(dir, t_.keep_checkpoints);
  std::fprintf(stderr, "ferry: checkpoint %s\n", file.c_str());
  if (kill_after_checkpoint_step() == s) {
    metrics_.flush();
    std::raise(SIGKILL);
  }
}

// The step's metrics line and, every log_every steps (and at the first, the last and evaluations),
// the progress line with MFU and ETA.
void PretrainRun::report(int s, const ScheduledStep& r, double step_seconds, bool evaluated, const Pace& pace) {
  const double tok_s =
      double(t_.batch_size) * t_.seq_len * t_.grad_accum * step_.data_shard().size / step_seconds;
  const double mfu = peak_ > 0 ? tok_s * gpt_flops_per_token(c_.model, t_.seq_len, gpt_.n_params) / peak_ : 0;
  if (!out_) return;
  // Timing fields (tokens_per_s, mfu) are the only ones that differ between two runs of one seed.
  nlohmann::json line = {{"step", s}, {"train_loss", r.result.loss}, {"lr", r.lr}, {"grad_norm", r.result.grad_norm},
                         {"tokens_per_s", tok_s}};
  if (peak_ > 0) line["mfu"] = mfu;
  if (evaluated) line["val_loss"] = summary_.final_val_loss;
  metrics_ << line.dump() << "\n";
  metrics_.flush();
  if (s % t_.log_every == 0 || s == first_step_ || s == t_.max_steps || evaluated) {
    const std::string val = evaluated ? " | val loss " + std::to_string(summary_.final_val_loss) : "";
    const std::string mfu_text = peak_ > 0 ? " | MFU " + std::to_string(int(std::lround(mfu * 100))) + "%" : "";
    std::fprintf(stderr, "step %5d/%d | loss %.4f | lr %.2e | norm %.3f | %.1fK tok/s%s | ETA %s%s\n", s, t_.max_steps,
                 r.result.loss, r.lr, r.result.grad_norm, tok_s / 1e3, mfu_text.c_str(),
                 format_duration(pace.eta_s(s, first_step_, t_.max_steps)).c_str(), val.c_str());
  }
  if (evaluated && o_.on_metrics) o_.on_metrics(metrics_file_);
}

TrainSummary PretrainRun::run() {
  summary_.arena_bytes = step_.arena_bytes();
  summary_.unshared_bytes = step_.unshared_bytes();
  if (t_.eval_every > 0 && first_step_ == 1) {
    summary_.initial_val_loss = evaluate();
    if (out_) {
      nlohmann::json line = {{"step", 0}, {"val_loss", summary_.initial_val_loss}};
      metrics_ << line.dump() << "\n";
      metrics_.flush();
      std::fprintf(stderr, "step %5d/%d | val loss %.4f\n", 0, t_.max_steps, summary_.initial_val_loss);
    }
  }

  const Schedule schedule{t_.max_steps, t_.warmup_steps, t_.lr, t_.min_lr};
  const bool on_cpu = backend_->device() == Device::CPU;
  const Pace pace;
  double train_seconds = 0;
  for (int s = first_step_; s <= t_.max_steps; ++s) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<Batch> micro;
    for (int k = 0; k < t_.grad_accum; ++k) micro.push_back(next_batch(*data_.train));
    const ScheduledStep r = train_step(step_, micro, s, schedule, "training", "train.lr");
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    train_seconds += dt;
    const bool eval_now = due(s, t_.eval_every, t_.max_steps);
    if (eval_now) {
      summary_.final_val_loss = evaluate();
      if (on_cpu) peak_ = std::max(peak_, measure_cpu_matmul_peak());
    }
    summary_.final_train_loss = r.result.loss;
    summary_.steps = s;
    report(s, r, dt, eval_now, pace);
    if (due(s, t_.sample_every, t_.max_steps)) sample(s);
    if (due(s, t_.checkpoint_every, t_.max_steps)) save_checkpoint(s);
  }
  const int ran = summary_.steps - first_step_ + 1;
  summary_.tokens_per_s = train_seconds > 0 ? double(t_.batch_size) * t_.seq_len * t_.grad_accum *
                                                  step_.data_shard().size * std::max(ran, 0) / train_seconds
                                            : 0;
  if (out_) {
    if (o_.on_metrics) o_.on_metrics(metrics_file_);
    std::fprintf(stderr, "ferry: done: %d steps, %.1fK tok/s, metrics in %s\n", summary_.steps,
                 summary_.tokens_per_s / 1e3, metrics_file_.c_str());
  }
  return summary_;
}

TrainSummary run(const RunConfig& c, DataSources* given, const PretrainOptions& o) {
  validate_run_config(c);
  if (o.init && !o.resume.empty())
    user_error("a run either starts from a model's weights (", o.init_source, ") or resumes a checkpoint, not both");
  if (!o.make_step) user_error("pretrain: no step factory given (PretrainOptions::make_step)");
  return PretrainRun(c, given, o).run();
}

}  // namespace

TrainSummary pretrain(const RunConfig& c, const PretrainOptions& o) { return run(c, nullptr, o); }

TrainSummary pretrain(const RunConfig& c, DataSources data, const PretrainOptions& o) { return run(c, &data, o); }

}  // namespace ferry
