// engine/graph_dtype.cpp
#include "engine/graph_dtype.h"

#include "base/error.h"
#include "engine/op.h"

namespace ferry {

bool retype_graph(Graph& g, DType from, DType to) {
  FERRY_CHECK(static_cast<int>(g.nodes.size()) == g.num_forward_nodes,
              "retype_graph: retype a graph before autodiff (it has backward nodes)");
  bool changed = false;
  for (Value& v : g.values) {
    FERRY_CHECK(v.role != ValueRole::ParamGrad, "retype_graph: the graph already has parameter gradients");
    if ((v.role == ValueRole::Input || v.role == ValueRole::Param) && v.dtype == from) {
      v.dtype = to;
      changed = true;
    }
  }
  if (!changed) return false;
  // Node order is a topological order: every node's inputs are retyped before its outputs are.
  for (const Node& n : g.nodes) {
    const auto specs = op_def(n.op).infer(g, n);
    FERRY_CHECK(specs.size() == n.out.size(), "retype_graph: ", n.op, " has ", n.out.size(), " outputs, infers ",
                specs.size());
    for (size_t k = 0; k < n.out.size(); ++k)
      if (n.out[k] >= 0) g.values[n.out[k]].dtype = specs[k].dtype;
  }
  return true;
}

void retype_for_device(Graph& g, Device device) {
  if (device == Device::CUDA) retype_graph(g, DType::F32, DType::BF16);
}

}  // namespace ferry
