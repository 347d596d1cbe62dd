// engine/train/run_config.h — one source of configuration: a TOML preset file plus command-line
// overrides with the same names. Every field is validated here; a bad one is a UserError naming it.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "engine/model/gpt.h"
#include "engine/optim/adamw.h"

namespace ferry {

struct TrainConfig {
  int batch_size = 8;
  int seq_len = 64;
  int max_steps = 100;
  int grad_accum = 1;
  float lr = 1e-3f;
  float min_lr = 1e-4f;
  int warmup_steps = 10;
  AdamWConfig adamw;
  int eval_every = 50;
  int eval_batches = 4;
  int log_every = 10;
  uint64_t seed = 1337;
  std::string out_dir = "runs/default";
  std::string device = "auto";
  std::string attention = "auto";  // ferry | cudnn | auto (the faster on this card, as benchmarked)
  double memory_limit_gb = 0;  // 0: whatever the backend has
  int checkpoint_every = 0;    // steps between checkpoints in <out_dir>/checkpoints (0: none)
  int keep_checkpoints = 3;    // newest checkpoints kept (0: all)
  int sample_every = 0;        // steps between printed samples (0: none)
  std::string sample_prompt = "The";
  int sample_tokens = 32;
};

struct DataConfig {
  // "synthetic": a generated English-like corpus (byte-level, vocab 256), always available.
  // "text": a UTF-8 file read byte-level (path). "shards": llm.c token shards (path = dir or glob).
  std::string source = "synthetic";
  std::string path;
  double val_fraction = 0.1;
  bool shuffle = false;  // shards: seeded shuffling of shards and windows (train split only)
};

// The rank grid tp × dp × pp (TP innermost); dp is what the world size leaves.
struct ParallelConfig {
  int tp = 1;
  int pp = 1;
  bool zero1 = false;  // shard optimizer state across data-parallel ranks
};

// The field tables (engine/config_fields.h): the keys of the [train], [data] and [parallel] tables
// of a run config, of config.json and of a checkpoint's run_config. [train] holds AdamW's settings.
template <typename Self, typename F>
std::enable_if_t<std::is_same_v<std::remove_const_t<Self>, TrainConfig>> visit_fields(Self& t, F&& f) {
  f("batch_size", t.batch_size);
  f("seq_len", t.seq_len);
  f("max_steps", t.max_steps);
  f("grad_accum", t.grad_accum);
  f("lr", t.lr);
  f("min_lr", t.min_lr);
  f("warmup_steps", t.warmup_steps);
  f("beta1", t.adamw.beta1);
  f("beta2", t.adamw.beta2);
  f("eps", t.adamw.eps);
  f("weight_decay", t.adamw.weight_decay);
  f("grad_clip", t.adamw.grad_clip);
  f("eval_every", t.eval_every);
  f("eval_batches", t.eval_batches);
  f("log_every", t.log_every);
  f("seed", t.seed);
  f("out_dir", t.out_dir);
  f("device", t.device);
  f("attention", t.attention);
  f("memory_limit_gb", t.memory_limit_gb);
  f("checkpoint_every", t.checkpoint_every);
  f("keep_checkpoints", t.keep_checkpoints);
  f("sample_every", t.sample_every);
  f("sample_prompt", t.sample_prompt);
  f("sample_tokens", t.sample_tokens);
}

template <typename Self, typename F>
std::enable_if_t<std::is_same_v<std::remove_const_t<Self>, DataConfig>> visit_fields(Self& d, F&& f) {
  f("source", d.source);
  f("path", d.path);
  f("val_fraction", d.val_fraction);
  f("shuffle", d.shuffle);
}

template <typename Self, typename F>
std::enable_if_t<std::is_same_v<std::remove_const_t<Self>, ParallelConfig>> visit_fields(Self& p, F&& f) {
  f("tp", p.tp);
  f("pp", p.pp);
  f("zero1", p.zero1);
}

struct RunConfig {
  GptConfig model;
  TrainConfig train;
  DataConfig data;
  ParallelConfig parallel;
  // Whether the source had a [model] table. Without one, a run started from a model file or resumed
  // from a checkpoint takes that file's architecture; with one, the two must agree.
  bool model_table = false;
};

// Reads a TOML file; unknown sections or keys, wrong types and a missing file are UserErrors
// that name the file and the field.
RunConfig load_run_config(const std::filesystem::path& file);
RunConfig parse_run_config(const std::string& toml_text, const std::string& source_name);
void validate_run_config(const RunConfig& c);

nlohmann::json to_json(const RunConfig& c);

}  // namespace ferry
