// engine/finetune/inference.h — forward passes of a task graph for evaluation and prediction: no
// backward, no optimizer state; the logits are read back after each batch. On the CUDA backend an
// fp32 task graph runs in bf16 (engine/graph_dtype.h): parameters are rounded on the way in and the
// logits widened to fp32 on the way out.
#pragma once
#include <memory>
#include <vector>

#include "engine/backend.h"
#include "engine/executor.h"
#include "engine/train/step.h"

namespace ferry {

class Inference {
 public:
  // `graph` is a forward-only task graph; `logits` its logits output.
  Inference(Graph graph, int logits, Backend& backend);
  void set_parameters(const std::vector<float>& flat);
  // Logits of one batch, flattened ([B,K] or [B,T,K]).
  std::vector<float> logits(const Batch& b);
  const Graph& graph() const { return graph_; }

 private:
  Graph graph_;
  int logits_;
  Backend& backend_;
  std::unique_ptr<Executor> executor_;
};

}  // namespace ferry
