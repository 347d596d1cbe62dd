// engine/finetune/inference.h — forward passes of a graph for evaluation and prediction: no
// backward, no optimizer state; after each batch either the logits are read back (classifiers,
// taggers) or only the graph's scalar loss (a language model's held-out loss, where [B,T,V] logits
// need not cross to the host). On the CUDA backend an fp32 graph runs in bf16
// (engine/graph_dtype.h): parameters are rounded on the way in, the logits widened to fp32 on the way
// out, and the loss is fp32 (cross_entropy accumulates in fp32 over bf16 logits).
#pragma once
#include <memory>
#include <vector>

#include "engine/backend.h"
#include "engine/executor.h"
#include "engine/train/step.h"

namespace ferry {

class Inference {
 public:
  // `graph` is a forward-only graph; `logits` its logits output, or −1 when only its loss is read.
  Inference(Graph graph, int logits, Backend& backend);
  void set_parameters(const std::vector<float>& flat);
  // Logits of one batch, flattened ([B,K] or [B,T,K]).
  std::vector<float> logits(const Batch& b);
  // The graph's loss output for one batch (its mean over the labelled positions).
  double loss(const Batch& b);
  const Graph& graph() const { return graph_; }

 private:
  void run(const Batch& b);
  Graph graph_;
  int logits_;
  Backend& backend_;
  std::unique_ptr<Executor> executor_;
};

}  // namespace ferry
