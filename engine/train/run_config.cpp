// engine/train/run_config.cpp
#include "engine/train/run_config.h"

#include <fstream>
#include <set>
#include <sstream>

#include "engine/config_fields.h"
#include "engine/toml.h"

#include "base/error.h"

namespace ferry {

namespace {

// Reads typed fields out of one TOML table and rejects keys nobody asked for.
class Section {
 public:
  Section(const toml::table* t, std::string name, std::string source)
      : t_(t), name_(std::move(name)), source_(std::move(source)) {}
  ~Section() = default;

  template <typename T>
  void read(const char* key, T& out) {
    seen_.insert(key);
    if (!t_) return;
    const toml::node* n = t_->get(key);
    if (!n) return;
    if constexpr (std::is_same_v<T, std::string>) {
      if (!n->is_string()) fail(key, "must be a string");
      out = n->as_string()->get();
    } else if constexpr (std::is_same_v<T, bool>) {
      if (!n->is_boolean()) fail(key, "must be true or false");
      out = n->as_boolean()->get();
    } else if constexpr (std::is_integral_v<T>) {
      if (!n->is_integer()) fail(key, "must be an integer");
      const int64_t v = n->as_integer()->get();
      if constexpr (std::is_unsigned_v<T>) {
        if (v < 0) fail(key, "must not be negative");
      }
      out = static_cast<T>(v);
    } else {
      if (!n->is_number()) fail(key, "must be a number");
      out = static_cast<T>(n->is_integer() ? double(n->as_integer()->get()) : n->as_floating_point()->get());
    }
  }

  void reject_unknown() const {
    if (!t_) return;
    for (const auto& [k, v] : *t_)
      if (!seen_.count(std::string(k.str())))
        user_error(source_, ": unknown key '", name_, ".", std::string(k.str()), "'");
  }

  [[noreturn]] void fail(const char* key, const char* what) const {
    user_error(source_, ": ", name_, ".", key, " ", what);
  }

 private:
  const toml::table* t_;
  std::string name_, source_;
  std::set<std::string> seen_;
};

// A table read through its struct's field table; keys nobody asked for are refused.
template <typename T>
void read_table(toml::table& root, const char* name, const std::string& source, T& out) {
  Section s(root[name].as_table(), name, source);
  visit_fields(out, [&](const char* key, auto& field) { s.read(key, field); });
  s.reject_unknown();
}

}  // namespace

RunConfig parse_run_config(const std::string& text, const std::string& source) {
  toml::table root;
  try {
    root = parse_toml(text, source);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    if (b.line == 0) user_error(source, ": ", std::string(e.description()));  // no position (engine/toml.h)
    user_error(source, ":", b.line, ":", b.column, ": ", std::string(e.description()));
  }
  for (const auto& [k, v] : root) {
    const std::string key(k.str());
    if (key != "model" && key != "train" && key != "data" && key != "parallel")
      user_error(source, ": unknown section '", key, "' (expected model, train, data, parallel)");
    if (!v.is_table()) user_error(source, ": '", key, "' must be a table ([", key, "])");
  }
  RunConfig c;
  {
    const toml::table* t = root["model"].as_table();
    c.model_table = t != nullptr;
    std::string preset = "tiny";
    if (t && t->get("preset")) {
      if (!t->get("preset")->is_string()) user_error(source, ": model.preset must be a string");
      preset = t->get("preset")->as_string()->get();
    }
    c.model = gpt_preset(preset);
    Section s(t, "model", source);
    visit_fields(c.model, [&](const char* key, auto& field) { s.read(key, field); });
    s.reject_unknown();
  }
  read_table(root, "train", source, c.train);
  read_table(root, "data", source, c.data);
  read_table(root, "parallel", source, c.parallel);
  return c;
}

RunConfig load_run_config(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) user_error("config file '", file.string(), "' cannot be read (missing or unreadable)");
  std::stringstream ss;
  ss << in.rdbuf();
  RunConfig c = parse_run_config(ss.str(), file.string());
  return c;
}

void validate_run_config(const RunConfig& c) {
  validate_gpt(c.model);
  const TrainConfig& t = c.train;
  auto positive = [](const char* field, double v) {
    if (!(v > 0)) user_error(field, " must be positive, got ", v);
  };
  positive("train.batch_size", t.batch_size);
  positive("train.seq_len", t.seq_len);
  positive("train.max_steps", t.max_steps);
  positive("train.grad_accum", t.grad_accum);
  positive("train.lr", t.lr);
  positive("train.eval_batches", t.eval_batches);
  positive("train.log_every", t.log_every);
  if (t.seq_len > c.model.max_seq_len)
    user_error("train.seq_len (", t.seq_len, ") exceeds the model's maximum, model.max_seq_len (",
               c.model.max_seq_len, ")");
  if (t.min_lr < 0 || t.min_lr > t.lr) user_error("train.min_lr must lie in [0, train.lr], got ", t.min_lr);
  if (t.warmup_steps < 0) user_error("train.warmup_steps must not be negative, got ", t.warmup_steps);
  if (t.eval_every < 0) user_error("train.eval_every must not be negative (0 disables), got ", t.eval_every);
  if (!(t.adamw.beta1 >= 0 && t.adamw.beta1 < 1)) user_error("train.beta1 must lie in [0, 1)");
  if (!(t.adamw.beta2 >= 0 && t.adamw.beta2 < 1)) user_error("train.beta2 must lie in [0, 1)");
  if (!(t.adamw.eps > 0)) user_error("train.eps must be positive");
  if (t.adamw.weight_decay < 0) user_error("train.weight_decay must not be negative");
  if (t.adamw.grad_clip < 0) user_error("train.grad_clip must not be negative (0 disables)");
  if (t.out_dir.empty()) user_error("train.out_dir must not be empty");
  if (t.device != "auto" && t.device != "cpu" && t.device != "cuda")
    user_error("train.device must be auto, cpu or cuda, got '", t.device, "'");
  if (t.attention != "ferry" && t.attention != "cudnn" && t.attention != "auto")
    user_error("train.attention must be ferry, cudnn or auto, got '", t.attention, "'");
  if (t.memory_limit_gb < 0) user_error("train.memory_limit_gb must not be negative");
  if (t.checkpoint_every < 0) user_error("train.checkpoint_every must not be negative (0 disables), got ", t.checkpoint_every);
  if (t.keep_checkpoints < 0) user_error("train.keep_checkpoints must not be negative (0 keeps all), got ", t.keep_checkpoints);
  if (t.sample_every < 0) user_error("train.sample_every must not be negative (0 disables), got ", t.sample_every);
  if (t.sample_tokens <= 0) user_error("train.sample_tokens must be positive, got ", t.sample_tokens);
  const std::string& src = c.data.source;
  if (src != "synthetic" && src != "text" && src != "shards")
    user_error("data.source must be synthetic, text or shards, got '", src, "'");
  if (src != "synthetic" && c.data.path.empty()) user_error("data.path is required when data.source = '", src, "'");
  if (!(c.data.val_fraction > 0 && c.data.val_fraction < 1)) user_error("data.val_fraction must lie in (0, 1)");
  if (c.parallel.tp <= 0) user_error("parallel.tp must be a positive integer, got ", c.parallel.tp);
  if (c.parallel.pp <= 0) user_error("parallel.pp must be a positive integer, got ", c.parallel.pp);
  if ((src == "synthetic" || src == "text") && c.model.vocab_size < 256)
    user_error("model.vocab_size must be at least 256 for byte-level data (data.source = '", src, "')");
}

nlohmann::json to_json(const RunConfig& c) {
  return {{"model", fields_to_json(c.model)},
          {"train", fields_to_json(c.train)},
          {"data", fields_to_json(c.data)},
          {"parallel", fields_to_json(c.parallel)}};
}

}  // namespace ferry
