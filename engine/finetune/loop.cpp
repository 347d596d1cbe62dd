// engine/finetune/loop.cpp
#include "engine/finetune/loop.h"

#include <chrono>
#include <cmath>
#include <cstdio>

#include "base/error.h"
#include "base/setting_error.h"
#include "engine/train/loop.h"

namespace ferry {

LoopResult run_finetune_loop(const LoopConfig& c, const LoopHooks& h, const std::vector<float>& initial) {
  if (c.max_steps <= 0) setting_error("steps", "must be positive, got ", c.max_steps);
  const bool gradual = c.unfreeze_every > 0;
  int unfrozen = gradual ? 1 : -1;
  std::unique_ptr<StepRunner> step = h.make_step(unfrozen);
  step->set_parameters(initial);
  const bool say = step->writes_output();  // one rank of a parallel job prints progress

  LoopResult r;
  r.best_metric = -1e300;
  int since_best = 0;
  auto evaluate = [&](int s) {
    const double m = h.dev_metric(*step);
    const bool better = m > r.best_metric;
    if (better) {
      r.best_metric = m;
      r.best_step = s;
      r.best_params = step->parameters();
      since_best = 0;
    } else {
      ++since_best;
    }
    if (!r.history.empty() && r.history.back().step == s) {
      r.history.back().dev_metric = m;
      r.history.back().evaluated = true;
    }
    if (say) std::fprintf(stderr, "step %5d | dev %.4f%s\n", s, m, better ? " (best)" : "");
  };

  const Schedule schedule{c.max_steps, c.warmup_steps, c.lr, c.min_lr};
  const Pace pace;
  for (int s = 1; s <= c.max_steps; ++s) {
    if (gradual && (s - 1) > 0 && (s - 1) % c.unfreeze_every == 0 && unfrozen <= h.n_layer) {
      // One more block (then the embeddings) joins; parameters and moments carry over.
      ++unfrozen;
      const std::vector<float> params = step->parameters();
      const OptimizerState opt = step->optimizer_state();
      step = h.make_step(unfrozen);
      step->set_parameters(params);
      step->set_optimizer_state(opt);
      if (say) std::fprintf(stderr, "step %5d | unfrozen: top %d of %d blocks%s\n", s, std::min(unfrozen, h.n_layer),
                   h.n_layer, unfrozen > h.n_layer ? " and the embeddings" : "");
    }
    const ScheduledStep scheduled = train_step(*step, h.next_batches(s), s, schedule, "fine-tuning", "lr");
    const float lr = scheduled.lr;
    const StepResult& res = scheduled.result;
    r.final_train_loss = res.loss;
    r.steps = s;
    r.history.push_back({s, res.loss, lr, 0.0, false});
    if (say && c.log_every > 0 && (s % c.log_every == 0 || s == 1)) {
      // ETA from the training steps' pace so far (dev evaluations included in it).
      const double elapsed = pace.elapsed_s();
      const double eta = elapsed / s * (c.max_steps - s);
      std::fprintf(stderr, "step %5d/%d | loss %.4f | lr %.2e | norm %.3f | %.0f tok/s | %.1fs | eta %.0fs\n", s,
                   c.max_steps, res.loss, lr, res.grad_norm, c.tokens_per_step > 0 ? c.tokens_per_step * s / elapsed : 0.0,
                   elapsed, eta);
    }
    const bool eval_now = due(s, c.eval_every, c.max_steps) || s == c.max_steps;  // always at the end
    if (eval_now) {
      evaluate(s);
      if (c.patience > 0 && since_best >= c.patience) {
        r.stopped_early = true;
        if (say) std::fprintf(stderr, "step %5d | early stop: no dev improvement in %d evaluations (best at step %d)\n", s,
                     c.patience, r.best_step);
        break;
      }
    }
  }
  return r;
}

}  // namespace ferry
