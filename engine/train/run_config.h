// engine/train/run_config.h — one source of configuration: a TOML preset file plus command-line
// overrides with the same names. Every field is validated here; a bad one is a UserError naming it.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

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
