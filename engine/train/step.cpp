// engine/train/step.cpp
#include "engine/train/step.h"

#include <algorithm>

#include "engine/autodiff.h"
#include "engine/cuda/device_step.h"
#include "base/error.h"
#include "engine/graph_dtype.h"

namespace ferry {

LocalStep::LocalStep(Graph graph, Backend& backend, AdamWConfig adamw, size_t memory_limit)
    : graph_(std::move(graph)), backend_(backend) {
  FERRY_CHECK(graph_.loss >= 0, "a training step needs a loss");
  const bool on_device = backend.device() == Device::CUDA;
  if (static_cast<int>(graph_.nodes.size()) == graph_.num_forward_nodes) {
    // A graph built in fp32 (the fine-tuning task graphs) runs in bf16 on the CUDA backend.
    retype_for_device(graph_, backend.device());
    derive_backward(graph_);
  }
  const size_t optimizer_bytes = on_device ? gpu::device_optimizer_bytes(graph_) : AdamW::state_bytes(graph_);
  executor_ = std::make_unique<Executor>(graph_, backend, optimizer_bytes, memory_limit);
  verify_plan(graph_, executor_->plan());
  if (on_device)
    device_ = gpu::make_device_step(graph_, *executor_, adamw);
  else
    optimizer_ = std::make_unique<AdamW>(graph_, *executor_, adamw);
}

LocalStep::~LocalStep() = default;

AdamW& LocalStep::optimizer() {
  FERRY_CHECK(optimizer_, "the host optimizer exists on the CPU backend only");
  return *optimizer_;
}

void LocalStep::set_graph_replay(bool on) {
  if (device_) device_->set_graph_replay(on);
}

size_t LocalStep::graph_nodes() const { return device_ ? device_->graph_nodes() : 0; }

void LocalStep::load(const Batch& b) {
  for (const auto& [value, data] : b.inputs) executor_->set_input(value, data.data(), data.size() * sizeof(int32_t));
}

StepResult LocalStep::train(const std::vector<Batch>& micro_batches, float lr) {
  FERRY_CHECK(!micro_batches.empty(), "a step needs at least one micro-batch");
  if (device_) return device_->train(micro_batches, lr);
  executor_->zero_grads();
  StepResult r;
  for (const Batch& b : micro_batches) {
    load(b);
    executor_->forward(true);
    executor_->backward();
    r.loss += executor_->read_scalar(graph_.loss);
  }
  r.loss /= static_cast<double>(micro_batches.size());
  r.grad_norm = optimizer_->step(lr);
  return r;
}

double LocalStep::evaluate(const Batch& batch) {
  load(batch);
  executor_->forward(false);
  return executor_->read_scalar(graph_.loss);
}

std::vector<float> LocalStep::parameters() const {
  if (device_) return device_->parameters();
  return executor_->parameters();
}

void LocalStep::set_parameters(const std::vector<float>& flat) {
  if (flat.size() != static_cast<size_t>(graph_.param_count()))
    user_error("parameters: ", flat.size(), " values for a model of ", graph_.param_count());
  if (device_) return device_->set_parameters(flat);
  executor_->set_parameters(flat);
}

// AdamW's moments live in the storage order (beside the flat buffers); the state is logical.
OptimizerState LocalStep::optimizer_state() const {
  if (device_) return device_->optimizer_state();
  OptimizerState s{optimizer_->steps_taken(), {}, {}};
  s.m.resize(static_cast<size_t>(graph_.param_count()));
  s.v.resize(s.m.size());
  gather_from_storage(graph_, optimizer_->m().data(), s.m.data());
  gather_from_storage(graph_, optimizer_->v().data(), s.v.data());
  return s;
}

void LocalStep::set_optimizer_state(const OptimizerState& s) {
  const size_t n = static_cast<size_t>(graph_.param_count());
  if (s.m.size() != n || s.v.size() != n || s.steps < 0)
    user_error("optimizer state: ", s.m.size(), "/", s.v.size(), " moments for a model of ", n, " parameters");
  if (device_) return device_->set_optimizer_state(s);
  std::fill(optimizer_->m().begin(), optimizer_->m().end(), 0.0f);
  std::fill(optimizer_->v().begin(), optimizer_->v().end(), 0.0f);
  scatter_to_storage(graph_, s.m.data(), optimizer_->m().data());
  scatter_to_storage(graph_, s.v.data(), optimizer_->v().data());
  optimizer_->set_steps_taken(s.steps);
}

}  // namespace ferry
