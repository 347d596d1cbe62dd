// tools/tasks/multitask.h — several tasks fine-tuned at once on one shared trunk (heads.h
// build_multitask_graph): each training batch's rows are drawn from the tasks by weight, one
// backward pass trains every head and the trunk, and each task is scored with its own
// single-task model (the trunk plus its head, taken by name), so per-task metrics, saved models,
// `ferry eval` and `ferry predict` are exactly those of a single-task run.
#pragma once
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/model/heads.h"
#include "tools/tasks/model_setup.h"

namespace ferry::tasks {

class MultiTaskModel {
 public:
  // base: the shared trunk (config, vocabulary, seq_len), techniques, batch and AdamW; heads[k] is
  // task k's head; weights[k] its share of each batch's rows and its loss weight.
  MultiTaskModel(TaskModel base, std::vector<HeadSpec> heads, std::vector<std::vector<std::string>> tag_names,
                 std::vector<float> weights);

  size_t size() const { return heads_.size(); }
  const std::vector<float>& weights() const { return weights_; }
  MultiTaskGraph graph() const;
  MultiTaskInputs inputs() const;
  std::unique_ptr<StepRunner> make_step(Backend& backend, int unfrozen_top) const;
  // Seeded initialization, then every parameter `pretrained` (a model file) holds by name.
  std::vector<float> initial_parameters(uint64_t seed, const std::string& pretrained, int* loaded) const;
  // Task k alone: its model and its parameters out of the multi-task flat array (by name).
  const TaskModel& task(size_t k) const { return tasks_[k]; }
  std::vector<float> task_parameters(size_t k, const std::vector<float>& multi) const;
  // Which task each of a batch's rows comes from, drawn by weight.
  std::vector<int> draw_row_tasks(std::mt19937_64& rng) const;

 private:
  TaskModel base_;
  std::vector<HeadSpec> heads_;
  std::vector<float> weights_;
  std::vector<TaskModel> tasks_;
};

}  // namespace ferry::tasks
