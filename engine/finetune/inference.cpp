// engine/finetune/inference.cpp
#include "engine/finetune/inference.h"

#include "base/error.h"
#include "engine/graph_dtype.h"
#include "kernels/dtype.h"

namespace ferry {

Inference::Inference(Graph graph, int logits, Backend& backend)
    : graph_(std::move(graph)), logits_(logits), backend_(backend) {
  FERRY_CHECK(logits_ >= 0 || graph_.loss >= 0, "inference reads logits or a loss");
  FERRY_CHECK(logits_ < 0 || graph_.values[logits_].role == ValueRole::Output, "inference logits must be a graph output");
  retype_for_device(graph_, backend_.device());
  executor_ = std::make_unique<Executor>(graph_, backend_);
}

void Inference::set_parameters(const std::vector<float>& flat) {
  FERRY_CHECK(flat.size() == static_cast<size_t>(graph_.param_count()), "inference parameters");
  executor_->set_parameters(flat);  // bf16 on the CUDA backend: rounded once, to nearest even
}

void Inference::run(const Batch& b) {
  for (const auto& [value, data] : b.inputs) executor_->set_input(value, data.data(), data.size() * sizeof(int32_t));
  executor_->forward(false);
}

double Inference::loss(const Batch& b) {
  FERRY_CHECK(graph_.loss >= 0, "inference: this graph has no loss");
  run(b);
  return executor_->read_scalar(graph_.loss);
}

std::vector<float> Inference::logits(const Batch& b) {
  FERRY_CHECK(logits_ >= 0, "inference: this graph's logits are not read back");
  run(b);
  std::vector<float> out(static_cast<size_t>(numel(graph_.values[logits_].shape)));
  if (graph_.values[logits_].dtype == DType::BF16) {
    std::vector<bf16> raw(out.size());
    executor_->read(logits_, raw.data(), raw.size() * sizeof(bf16));
    for (size_t i = 0; i < out.size(); ++i) out[i] = bf16_to_float(raw[i]);
    return out;
  }
  executor_->read(logits_, out.data(), out.size() * sizeof(float));
  return out;
}

}  // namespace ferry
