// engine/train/trainer.cpp
#include "engine/train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/backend.h"
#include "engine/device.h"
#include "engine/error.h"
#include "engine/train/gpt_step.h"
#include "engine/train/lr_schedule.h"

namespace ferry {

namespace {

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

}  // namespace

DataSources make_data_sources(const RunConfig& c) {
  const int B = c.train.batch_size, T = c.train.seq_len;
  std::string text;
  if (c.data.source == "synthetic") {
    text = synthetic_corpus(2'000'000, 20240520);
  } else if (c.data.source == "text") {
    text = read_file(c.data.path);
  } else {
    user_error("data.source = 'shards' is not available in this build yet");
  }
  std::vector<int32_t> tokens = byte_tokens(text);
  const size_t n_val = static_cast<size_t>(static_cast<double>(tokens.size()) * c.data.val_fraction);
  if (n_val < static_cast<size_t>(T) + 1 || tokens.size() - n_val < static_cast<size_t>(T) + 1)
    user_error("data: ", tokens.size(), " tokens are too few for a train/validation split at seq_len ", T);
  std::vector<int32_t> val(tokens.end() - static_cast<std::ptrdiff_t>(n_val), tokens.end());
  tokens.resize(tokens.size() - n_val);
  return {std::make_unique<TokenStreamSource>(std::move(tokens), B, T),
          std::make_unique<TokenStreamSource>(std::move(val), B, T)};
}

TrainSummary pretrain(const RunConfig& c, DataSources data) {
  validate_run_config(c);
  const TrainConfig& t = c.train;
  std::fprintf(stderr, "ferry: %s\n", device_summary().c_str());
  auto backend = make_backend(t.device);

  GptStep gpt = make_gpt_step(c, *backend);
  StepRunner& step = *gpt.runner;
  const int64_t n_params = gpt.n_params;
  {
    Graph layout;  // init_gpt_params reads names and offsets only
    layout.params = gpt.params;
    std::vector<double> init;
    init_gpt_params(layout, c.model, t.seed, init);
    step.set_parameters(std::vector<float>(init.begin(), init.end()));
  }

  std::filesystem::create_directories(t.out_dir);
  {
    std::ofstream cfg(std::filesystem::path(t.out_dir) / "config.json");
    cfg << to_json(c).dump(2) << "\n";
  }
  std::ofstream metrics(std::filesystem::path(t.out_dir) / "metrics.jsonl", std::ios::trunc);
  if (!metrics) user_error("train.out_dir '", t.out_dir, "': cannot write metrics.jsonl");

  std::fprintf(stderr,
               "ferry: model %s: %d layers, %d heads, %d wide, vocab %d: %.2fM parameters; batch %d x %d x %d "
               "accum; activations %s planned (%s unshared, %.1fx less)\n",
               c.model.preset.c_str(), c.model.n_layer, c.model.n_head, c.model.n_embd, c.model.vocab_size,
               double(n_params) / 1e6, t.batch_size, t.seq_len, t.grad_accum,
               format_bytes(double(step.arena_bytes())).c_str(), format_bytes(double(step.unshared_bytes())).c_str(),
               double(step.unshared_bytes()) / double(std::max<size_t>(1, step.arena_bytes())));

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

  TrainSummary summary;
  summary.arena_bytes = step.arena_bytes();
  summary.unshared_bytes = step.unshared_bytes();
  if (t.eval_every > 0) {
    summary.initial_val_loss = evaluate();
    nlohmann::json line = {{"step", 0}, {"val_loss", summary.initial_val_loss}};
    metrics << line.dump() << "\n";
    std::fprintf(stderr, "step %5d/%d | val loss %.4f\n", 0, t.max_steps, summary.initial_val_loss);
  }

  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  double train_seconds = 0;
  for (int s = 1; s <= t.max_steps; ++s) {
    const auto t0 = clock::now();
    const float lr = learning_rate(s - 1, t.max_steps, t.warmup_steps, t.lr, t.min_lr);
    std::vector<Batch> micro;
    for (int k = 0; k < t.grad_accum; ++k) micro.push_back(next_batch(*data.train));
    const StepResult r = step.train(micro, lr);
    if (!std::isfinite(r.loss)) user_error("training diverged at step ", s, ": loss is ", r.loss, " (lower train.lr)");
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    train_seconds += dt;
    const double tok_s = double(bt) * t.grad_accum / dt;

    nlohmann::json line = {{"step", s}, {"train_loss", r.loss}, {"lr", lr}, {"grad_norm", r.grad_norm},
                           {"tokens_per_s", tok_s}};
    const bool eval_now = t.eval_every > 0 && (s % t.eval_every == 0 || s == t.max_steps);
    if (eval_now) {
      summary.final_val_loss = evaluate();
      line["val_loss"] = summary.final_val_loss;
    }
    metrics << line.dump() << "\n";
    metrics.flush();
    summary.final_train_loss = r.loss;
    summary.steps = s;

    if (s % t.log_every == 0 || s == 1 || s == t.max_steps || eval_now) {
      const double elapsed = std::chrono::duration<double>(clock::now() - start).count();
      const double eta = elapsed / s * (t.max_steps - s);
      std::string val = eval_now ? " | val loss " + std::to_string(summary.final_val_loss) : "";
      std::fprintf(stderr, "step %5d/%d | loss %.4f | lr %.2e | norm %.3f | %.1fK tok/s | ETA %s%s\n", s,
                   t.max_steps, r.loss, lr, r.grad_norm, tok_s / 1e3, format_duration(eta).c_str(), val.c_str());
    }
  }
  summary.tokens_per_s = train_seconds > 0 ? double(bt) * t.grad_accum * summary.steps / train_seconds : 0;
  std::fprintf(stderr, "ferry: done: %d steps, %.1fK tok/s, metrics in %s\n", summary.steps,
               summary.tokens_per_s / 1e3, (std::filesystem::path(t.out_dir) / "metrics.jsonl").c_str());
  return summary;
}

}  // namespace ferry
