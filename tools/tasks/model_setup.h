// tools/tasks/model_setup.h — a task model ready to train or run: its metadata, its graphs (training
// step with techniques applied, forward-only inference) and its initial parameters (the pretrained
// trunk by name, fresh heads and adapters).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/finetune/inference.h"
#include "engine/finetune/techniques.h"
#include "engine/optim/adamw.h"
#include "parallel/runner.h"
#include "tools/tasks/runner.h"

namespace ferry::tasks {

struct TaskModel {
  ModelMeta meta;
  Techniques techniques;
  int batch = 16;
  AdamWConfig adamw;
  // How the training step runs over the job's ranks (tp × dp × pp; one process: all 1). `batch`
  // is the global batch: each DP rank's graph holds batch / dp rows.
  parallel::ParallelLayout layout;

  TaskGraph graph(bool for_training, int lora_rank) const;
  // The step (parallel::make_task_runner over the job's world) whose graph has techniques applied
  // (unfrozen_top as in apply_techniques), at the per-rank batch.
  std::unique_ptr<StepRunner> make_step(Backend& backend, int unfrozen_top) const;
  std::unique_ptr<Inference> make_inference(Backend& backend) const;
  // init_gpt_params (seeded), then every parameter `pretrained` holds by name (when given), then
  // LoRA adapters. Returns the flat parameters of the training graph and how many came from the file.
  std::vector<float> initial_parameters(uint64_t seed, const std::string& pretrained, int* loaded) const;
  // Parameters without adapters: LoRA merged into the weights (for saving and inference).
  std::vector<float> exportable(const std::vector<float>& training_params) const;
};

// Rows per data-parallel rank of a global batch on the job's world (UserError when it does not split).
int rows_per_rank(int batch, const parallel::ParallelLayout& layout);
// This process's share of the data under `layout` on the job's world.
StepRunner::DataShard data_shard_of(const parallel::ParallelLayout& layout);

}  // namespace ferry::tasks
