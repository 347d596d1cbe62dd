// engine/autodiff.cpp
#include "engine/autodiff.h"

#include "base/error.h"
#include "engine/op.h"

namespace ferry {

void Autodiff::run() {
  FERRY_CHECK(g_.loss >= 0, "autodiff needs a loss value");
  FERRY_CHECK(static_cast<int>(g_.nodes.size()) == g_.num_forward_nodes, "backward graph already derived");
  // Which values lead to a trainable parameter: one forward sweep.
  needs_.assign(g_.values.size(), false);
  for (const auto& p : g_.params) needs_[p.value] = p.trainable;
  for (int i = 0; i < g_.num_forward_nodes; ++i) {
    bool any = false;
    for (int v : g_.nodes[i].in)
      if (v >= 0 && needs_[v]) any = true;
    for (int v : g_.nodes[i].out)
      if (v >= 0) needs_[v] = any;
  }
  for (size_t v = 0; v < g_.values.size(); ++v) g_.values[v].requires_grad = needs_[v];
  final_[g_.loss] = kSeed;
  for (int i = g_.num_forward_nodes - 1; i >= 0; --i) {
    const Node n = g_.nodes[i];  // a copy: finalize() may append nodes
    bool any = false;
    for (int v : n.out)
      if (v >= 0 && finalize(v) != -1) any = true;
    if (!any) continue;
    const OpDef& def = op_def(n.op);
    if (def.backward) def.backward(*this, i);
  }
  // Gradients that reached a parameter as an activation input (not through a weight slot that
  // accumulates by itself) are added into its gradient buffer at the end.
  for (auto& [value, grads] : pending_) {
    if (g_.values[value].role != ValueRole::Param) continue;
    const int target = param_grad(value);
    if (target == Graph::kSkip) continue;
    for (int gv : grads) emit("accumulate", {gv}, {}, {target});
  }
}

int Autodiff::finalize(int value) {
  if (auto it = final_.find(value); it != final_.end()) return it->second;
  int g = -1;
  auto it = pending_.find(value);
  if (it != pending_.end()) {
    // Sum contributions in the order they were made: deterministic.
    g = it->second[0];
    for (size_t k = 1; k < it->second.size(); ++k)
      g = emit("add", {g, it->second[k]}, {}, {Graph::kNew})[0];
  }
  final_[value] = g;
  return g;
}

int Autodiff::grad_of(int value) const {
  auto it = final_.find(value);
  return it == final_.end() ? -1 : it->second;
}

bool Autodiff::needs_grad(int value) const { return value >= 0 && needs_[value]; }

int Autodiff::param_grad(int value) {
  const Value& v = g_.values[value];
  FERRY_CHECK(v.role == ValueRole::Param, "param_grad on non-parameter ", v.name);
  ParamInfo& p = g_.params[v.param];
  if (!p.trainable) return Graph::kSkip;
  if (p.grad < 0) {
    Value gv;
    gv.name = "grad." + p.name;
    gv.shape = v.shape;
    gv.dtype = v.dtype;
    gv.role = ValueRole::ParamGrad;
    gv.param = v.param;
    g_.values.push_back(gv);
    p.grad = static_cast<int>(g_.values.size()) - 1;
  }
  return p.grad;
}

void Autodiff::contribute(int value, int grad) {
  FERRY_CHECK(final_.find(value) == final_.end(), "gradient contributed after ", g_.values[value].name,
              " was finalized");
  pending_[value].push_back(grad);
}

std::vector<int> Autodiff::emit(const std::string& op, std::vector<int> in, Attrs attrs,
                                const std::vector<int>& want) {
  return g_.add_with_outputs(op, std::move(in), std::move(attrs), want, true);
}

void derive_backward(Graph& g) {
  Autodiff ad(g);
  ad.run();
}

}  // namespace ferry
