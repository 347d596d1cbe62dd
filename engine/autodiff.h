// engine/autodiff.h — derives the backward graph once, by walking the forward nodes in reverse and
// calling each op's backward rule. Rules see this interface:
//   grad_of(v)      the (summed) gradient arriving at forward value v, -1 if none, kSeed for the loss
//   needs_grad(v)   whether v's gradient is wanted (it leads to a trainable parameter)
//   param_grad(v)   for a parameter: the gradient value to accumulate into, Graph::kSkip if frozen
//   contribute(v,g) add g to the gradient of activation v (several contributions are summed)
//   emit(...)       append a backward node
#pragma once
#include <map>
#include <vector>

#include "engine/graph.h"

namespace ferry {

class Autodiff {
 public:
  static constexpr int kSeed = -3;

  explicit Autodiff(Graph& g) : g_(g) {}
  // Appends the backward graph for g.loss. Parameter trainability (ParamInfo::trainable) is read
  // here, so freezing is decided before this call.
  void run();

  Graph& graph() { return g_; }
  // A copy: rules emit nodes, which may move the node array.
  Node node(int i) const { return g_.nodes[i]; }
  int grad_of(int value) const;
  bool needs_grad(int value) const;
  int param_grad(int value);
  void contribute(int value, int grad);
  std::vector<int> emit(const std::string& op, std::vector<int> in, Attrs attrs, const std::vector<int>& want);

 private:
  int finalize(int value);
  Graph& g_;
  std::map<int, std::vector<int>> pending_;  // activation → gradient contributions
  std::map<int, int> final_;                 // activation → summed gradient
  std::vector<bool> needs_;
};

// Convenience for tests and training: build backward if the graph has a loss and none yet.
void derive_backward(Graph& g);

}  // namespace ferry
