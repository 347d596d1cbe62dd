// engine/train/loop.h — the pieces every training loop is made of, shared by pretraining
// (engine/train/trainer.cpp) and fine-tuning (engine/finetune/loop.cpp): one optimizer step on the
// warm-up + cosine schedule with its divergence check, when a periodic action is due, and the pace
// (elapsed time, ETA) for the progress line. What differs between the loops (checkpoints, samples
// and metrics files for pretraining; best-on-dev, early stopping and gradual unfreezing for
// fine-tuning) stays in each loop.
#pragma once
#include <chrono>
#include <string>
#include <vector>

#include "engine/train/step.h"

namespace ferry {

// Linear warm-up, then cosine decay to min_lr at max_steps (engine/train/lr_schedule.h).
struct Schedule {
  int max_steps = 0;
  int warmup_steps = 0;
  float lr = 0;
  float min_lr = 0;
  // The learning rate of step s, counted from 1.
  float at(int s) const;
};

struct ScheduledStep {
  float lr = 0;
  StepResult result;
};

// Step s (from 1) of the schedule: the learning rate, one optimizer step over `micro_batches`, and a
// loss that is not finite stops the run with a UserError ("<what> diverged at step s: loss is nan
// (lower <lr_setting>)").
ScheduledStep train_step(StepRunner& step, const std::vector<Batch>& micro_batches, int s, const Schedule& schedule,
                         const char* what, const char* lr_setting);

// True at every `every`-th step and at the last; never when every <= 0.
bool due(int s, int every, int last);

// Wall time since the loop started, and the time left at the pace of the steps run so far.
class Pace {
 public:
  Pace() : start_(std::chrono::steady_clock::now()) {}
  double elapsed_s() const;
  // After step s, having run steps first..s of first..last.
  double eta_s(int s, int first, int last) const;

 private:
  std::chrono::steady_clock::time_point start_;
};

// h:mm:ss
std::string format_duration(double seconds);

}  // namespace ferry
