// engine/train/lr_schedule.h — linear warm-up, then cosine decay to min_lr at the last step
// (GPT-2/llm.c practice). Steps count from 0.
#pragma once
#include <cmath>

namespace ferry {

inline float learning_rate(int step, int max_steps, int warmup_steps, float lr, float min_lr) {
  if (step < warmup_steps) return lr * static_cast<float>(step + 1) / static_cast<float>(warmup_steps);
  if (max_steps <= warmup_steps) return lr;
  const double progress = static_cast<double>(step - warmup_steps) / static_cast<double>(max_steps - warmup_steps);
  const double cosine = 0.5 * (1.0 + std::cos(3.14159265358979323846 * std::min(progress, 1.0)));
  return static_cast<float>(min_lr + (lr - min_lr) * cosine);
}

}  // namespace ferry
