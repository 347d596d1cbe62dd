// tools/tasks/evaluation.h — one split of a task scored the same way by `ferry finetune` (at the
// end) and `ferry eval`: the metric, the confusion matrix or per-type F1, the predictions, and
// eval.json (task, metric, value, split, n_train_labels, init, and the details).
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/finetune/loop.h"
#include "tools/tasks/model_setup.h"

namespace ferry::tasks {

struct EvalReport {
  nlohmann::json json;                // what eval.json holds
  std::string summary;                // for the terminal
  std::vector<std::string> predictions;  // one line per example
};

// params: exportable parameters (no adapters). split: "dev" or "test".
EvalReport evaluate_model(const TaskModel& m, Backend& backend, const std::vector<float>& params, const TaskData& data,
                          const std::string& split);

void write_eval(const std::filesystem::path& dir, const EvalReport& r, const std::filesystem::path& predictions_file);

// <dir>/metrics.jsonl: one line per step, {"step", "train_loss", "lr"} plus "dev" (the dev metric,
// `metric` named in the line too) at evaluated steps — what `ferry plot` draws.
void write_history(const std::filesystem::path& dir, const std::vector<LoopRecord>& history, const std::string& metric);

}  // namespace ferry::tasks
