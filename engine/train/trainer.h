// engine/train/trainer.h — the pretraining loop: schedule, gradient accumulation, clipping, periodic
// validation, metrics (metrics.jsonl), progress on the terminal, checkpoints and resume, samples.
// Same seed, same bits — also across a kill and a resume.
//
// Test-only hook: with FERRY_TEST_KILL_AFTER_CHECKPOINT=<step> in the environment the process raises
// SIGKILL right after the checkpoint of that step is on disk (the resume test's crash).
#pragma once
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "engine/checkpoint/checkpoint.h"
#include "engine/train/batch_source.h"
#include "engine/train/run_config.h"
#include "engine/train/step.h"

namespace ferry {

struct TrainSummary {
  double initial_val_loss = std::numeric_limits<double>::quiet_NaN();
  double final_val_loss = std::numeric_limits<double>::quiet_NaN();
  double final_train_loss = std::numeric_limits<double>::quiet_NaN();
  int steps = 0;
  int resumed_from = 0;  // the checkpoint's step, 0 for a fresh run
  double tokens_per_s = 0;
  size_t arena_bytes = 0;
  size_t unshared_bytes = 0;
};

struct DataSources {
  std::unique_ptr<BatchSource> train;
  std::unique_ptr<BatchSource> val;
};

// The train/validation sources that RunConfig::data names, for one data-parallel slice. Shards:
// data.path is a folder (splits "train" and "val") or a glob of train shards (the validation glob
// replaces `_train_` by `_val_`); token ids are checked against model.vocab_size.
DataSources make_data_sources(const RunConfig& c, StepRunner::DataShard shard = {});

struct PretrainOptions {
  // Builds the run's step (parallel::make_gpt_step, parallel/step_factory.h: how a step runs —
  // one process or a rank of a parallel layout — is composed above the engine). Required.
  std::function<GptStep(const RunConfig&, Backend&)> make_step;
  // "" starts fresh; "auto" continues from the newest checkpoint in <out_dir>/checkpoints when there
  // is one (else starts fresh); anything else is a checkpoint file to continue from.
  std::string resume;
  // A new run (step 0, fresh AdamW state) from these weights instead of the seeded initialization:
  // a model of the run's architecture (else a UserError naming the first field that differs), its
  // parameters copied by name into the run's flat layout, so every parallel layout cuts them as it
  // cuts a resumed checkpoint's. Not together with resume. init_source names the model in messages
  // and in the checkpoints' state ("init").
  std::shared_ptr<const Checkpoint> init;
  std::string init_source;
  // Text ↔ token ids for samples; unset: bytes (byte-level models). The CLI supplies the GPT-2
  // tokenizer for BPE vocabularies (the engine does not depend on tools/).
  std::function<std::vector<int32_t>(const std::string&)> encode;
  std::function<std::string(const std::vector<int32_t>&)> decode;
  // Called on the output rank after every validation and at the end with the metrics file (the CLI
  // draws the loss curve beside it).
  std::function<void(const std::filesystem::path& metrics_file)> on_metrics;
};

// Sources built here for the runner's data slice.
TrainSummary pretrain(const RunConfig& c, const PretrainOptions& o);
// Sources given (single-process tests and tools).
TrainSummary pretrain(const RunConfig& c, DataSources data, const PretrainOptions& o = {});

// Where a run keeps its checkpoints.
inline std::filesystem::path checkpoint_dir(const RunConfig& c) {
  return std::filesystem::path(c.train.out_dir) / "checkpoints";
}

}  // namespace ferry
