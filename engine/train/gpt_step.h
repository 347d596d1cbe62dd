// engine/train/gpt_step.h — the step runner for a GPT run config: the one place that decides how a
// step executes (one process now; data-, tensor- and pipeline-parallel runners plug in here from
// parallel/ when RunConfig::parallel or the launcher's world size asks for them).
#pragma once
#include <memory>

#include "engine/backend.h"
#include "engine/train/run_config.h"
#include "engine/train/step.h"

namespace ferry {

struct GptStep {
  std::unique_ptr<StepRunner> runner;
  // Value ids of the integer inputs in the single-process GPT graph; batches are keyed by these
  // whatever the layout (a parallel runner maps them onto its shards and stages).
  int tokens = -1;
  int targets = -1;
  int64_t n_params = 0;
  // The full (unsharded) parameter layout, for initialization and checkpoints.
  std::vector<ParamInfo> params;
};

GptStep make_gpt_step(const RunConfig& c, Backend& backend);

}  // namespace ferry
