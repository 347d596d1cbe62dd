// engine/train/loop.cpp
#include "engine/train/loop.h"

#include <cmath>
#include <cstdio>

#include "base/error.h"
#include "engine/train/lr_schedule.h"

namespace ferry {

float Schedule::at(int s) const { return learning_rate(s - 1, max_steps, warmup_steps, lr, min_lr); }

ScheduledStep train_step(StepRunner& step, const std::vector<Batch>& micro_batches, int s, const Schedule& schedule,
                         const char* what, const char* lr_setting) {
  ScheduledStep r;
  r.lr = schedule.at(s);
  r.result = step.train(micro_batches, r.lr);
  if (!std::isfinite(r.result.loss))
    user_error(what, " diverged at step ", s, ": loss is ", r.result.loss, " (lower ", lr_setting, ")");
  return r;
}

bool due(int s, int every, int last) { return every > 0 && (s % every == 0 || s == last); }

double Pace::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

double Pace::eta_s(int s, int first, int last) const { return elapsed_s() / (s - first + 1) * (last - s); }

std::string format_duration(double seconds) {
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  return buf;
}

}  // namespace ferry
