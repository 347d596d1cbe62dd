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
#include "tools/tasks/runner.h"

namespace ferry::tasks {

struct TaskModel {
  ModelMeta meta;
  Techniques techniques;
  int batch = 16;
  AdamWConfig adamw;

  TaskGraph graph(bool for_training, int lora_rank) const;
  // A LocalStep whose graph has techniques applied (unfrozen_top as in apply_techniques).
  std::unique_ptr<StepRunner> make_step(Backend& backend, int unfrozen_top) const;
  std::unique_ptr<Inference> make_inference(Backend& backend) const;
  // init_gpt_params (seeded), then every parameter `pretrained` holds by name (when given), then
  // LoRA adapters. Returns the flat parameters of the training graph and how many came from the file.
  std::vector<float> initial_parameters(uint64_t seed, const std::string& pretrained, int* loaded) const;
  // Parameters without adapters: LoRA merged into the weights (for saving and inference).
  std::vector<float> exportable(const std::vector<float>& training_params) const;
};

}  // namespace ferry::tasks
