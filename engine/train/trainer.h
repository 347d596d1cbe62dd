// engine/train/trainer.h — the pretraining loop: schedule, gradient accumulation, clipping, periodic
// validation, metrics (metrics.jsonl) and progress on the terminal. Same seed, same bits.
#pragma once
#include <limits>
#include <memory>

#include "engine/train/batch_source.h"
#include "engine/train/run_config.h"

namespace ferry {

struct TrainSummary {
  double initial_val_loss = std::numeric_limits<double>::quiet_NaN();
  double final_val_loss = std::numeric_limits<double>::quiet_NaN();
  double final_train_loss = std::numeric_limits<double>::quiet_NaN();
  int steps = 0;
  double tokens_per_s = 0;
  size_t arena_bytes = 0;
  size_t unshared_bytes = 0;
};

struct DataSources {
  std::unique_ptr<BatchSource> train;
  std::unique_ptr<BatchSource> val;
};

// The train/validation sources that RunConfig::data names.
DataSources make_data_sources(const RunConfig& c);

TrainSummary pretrain(const RunConfig& c, DataSources data);

}  // namespace ferry
