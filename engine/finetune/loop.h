// engine/finetune/loop.h — the fine-tuning loop, whatever the task: warm-up + cosine schedule,
// periodic dev evaluation, the best parameters kept, early stopping after `patience` evaluations
// without improvement, and gradual unfreezing (the step is rebuilt with more trainable blocks, and
// parameters and AdamW moments carry over: the flat layout does not depend on trainability).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "engine/train/step.h"

namespace ferry {

struct LoopConfig {
  int max_steps = 100;
  int warmup_steps = 10;
  float lr = 1e-3f;
  float min_lr = 1e-4f;
  int eval_every = 50;   // 0: evaluate once, at the end
  int patience = 0;      // evaluations without improvement before stopping; 0: never stop early
  int unfreeze_every = 0;
  int log_every = 10;
  int64_t tokens_per_step = 0;  // for the tokens/s in the progress line (batch × sequence length)
};

struct LoopHooks {
  // A step whose graph has `unfrozen_top` top blocks trainable (−1: the techniques' own choice).
  std::function<std::unique_ptr<StepRunner>(int unfrozen_top)> make_step;
  std::function<std::vector<Batch>(int step)> next_batches;
  // Higher is better (accuracy, F1, −loss).
  std::function<double(StepRunner&)> dev_metric;
  int n_layer = 0;  // for gradual unfreezing
};

// One logged step: the train loss and learning rate, and the dev metric where the step was evaluated.
struct LoopRecord {
  int step = 0;
  double train_loss = 0;
  double lr = 0;
  double dev_metric = 0;  // meaningful only when evaluated
  bool evaluated = false;
};

struct LoopResult {
  int steps = 0;
  int best_step = 0;
  double best_metric = 0;
  bool stopped_early = false;
  double final_train_loss = 0;
  std::vector<float> best_params;
  std::vector<LoopRecord> history;  // every step, in order (metrics.jsonl)
};

// `initial`: the starting parameters in the step's flat order.
LoopResult run_finetune_loop(const LoopConfig& c, const LoopHooks& h, const std::vector<float>& initial);

}  // namespace ferry
