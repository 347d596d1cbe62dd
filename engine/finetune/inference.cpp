// engine/finetune/inference.cpp
#include "engine/finetune/inference.h"

#include "engine/error.h"

namespace ferry {

Inference::Inference(Graph graph, int logits, Backend& backend)
    : graph_(std::move(graph)), logits_(logits), backend_(backend) {
  FERRY_CHECK(graph_.values[logits_].role == ValueRole::Output, "inference logits must be a graph output");
  executor_ = std::make_unique<Executor>(graph_, backend_);
}

void Inference::set_parameters(const std::vector<float>& flat) {
  FERRY_CHECK(flat.size() == static_cast<size_t>(graph_.param_count()), "inference parameters");
  backend_.upload(executor_->params().data, flat.data(), flat.size() * sizeof(float));
}

std::vector<float> Inference::logits(const Batch& b) {
  for (const auto& [value, data] : b.inputs) executor_->set_input(value, data.data(), data.size() * sizeof(int32_t));
  executor_->forward(false);
  std::vector<float> out(static_cast<size_t>(numel(graph_.values[logits_].shape)));
  executor_->read(logits_, out.data(), out.size() * sizeof(float));
  return out;
}

}  // namespace ferry
