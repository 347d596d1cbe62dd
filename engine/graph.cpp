// engine/graph.cpp
#include "engine/graph.h"

#include <sstream>

#include "base/error.h"
#include "engine/op.h"

namespace ferry {

namespace {

size_t align_storage(size_t elements) {
  constexpr size_t a = static_cast<size_t>(kParamAlignment);
  return (elements + a - 1) / a * a;
}

}  // namespace

int Graph::add_input(const std::string& name, Shape shape, DType dtype) {
  Value v;
  v.name = name;
  v.shape = std::move(shape);
  v.dtype = dtype;
  v.role = ValueRole::Input;
  values.push_back(v);
  return static_cast<int>(values.size()) - 1;
}

int Graph::add_param(const std::string& name, Shape shape, DType dtype, bool weight_decay, int layer,
                     int64_t padded_rows) {
  FERRY_CHECK(param_index(name) < 0, "duplicate parameter ", name);
  FERRY_CHECK(padded_rows == 0 || (!shape.empty() && padded_rows > 0 && padded_rows <= shape[0]),
              "parameter ", name, ": ", padded_rows, " padding rows");
  Value v;
  v.name = name;
  v.shape = std::move(shape);
  v.dtype = dtype;
  v.role = ValueRole::Param;
  v.requires_grad = true;
  v.param = static_cast<int>(params.size());
  values.push_back(v);
  ParamInfo p;
  p.name = name;
  p.value = static_cast<int>(values.size()) - 1;
  p.weight_decay = weight_decay;
  p.layer = layer;
  p.storage_numel = numel(values.back().shape);
  p.padded_rows = padded_rows;
  p.numel = padded_rows ? p.storage_numel / values.back().shape[0] * (values.back().shape[0] - padded_rows)
                        : p.storage_numel;
  p.offset = params.empty() ? 0 : params.back().offset + static_cast<size_t>(params.back().numel);
  p.storage = params.empty() ? 0 : align_storage(params.back().storage + static_cast<size_t>(params.back().storage_numel));
  params.push_back(p);
  return p.value;
}

std::vector<int> Graph::add(const std::string& op, std::vector<int> in, Attrs attrs, const std::string& name) {
  FERRY_CHECK(num_forward_nodes == static_cast<int>(nodes.size()), "forward node added after autodiff: ", op);
  auto out = add_with_outputs(op, std::move(in), std::move(attrs), {}, false, name);
  num_forward_nodes = static_cast<int>(nodes.size());
  return out;
}

std::vector<int> Graph::add_with_outputs(const std::string& op, std::vector<int> in, Attrs attrs,
                                         const std::vector<int>& want, bool backward, const std::string& name) {
  const OpDef& def = op_def(op);
  Node node;
  node.op = op;
  node.in = std::move(in);
  node.attrs = std::move(attrs);
  node.backward = backward;
  for (int v : node.in) FERRY_CHECK(v >= -1 && v < static_cast<int>(values.size()), "bad input to ", op);
  const auto specs = def.infer(*this, node);
  FERRY_CHECK(want.empty() || want.size() == specs.size(), op, ": ", want.size(), " outputs wanted, op has ",
              specs.size());
  const int node_index = static_cast<int>(nodes.size());
  bool any_requires_grad = false;
  for (int v : node.in)
    if (v >= 0 && values[v].requires_grad) any_requires_grad = true;
  for (size_t k = 0; k < specs.size(); ++k) {
    const int w = want.empty() ? kNew : want[k];
    if (w == kSkip) {
      node.out.push_back(-1);
    } else if (w >= 0) {
      FERRY_CHECK(values[w].shape == specs[k].shape, op, " output ", k, ": given ", shape_str(values[w].shape),
                  ", inferred ", shape_str(specs[k].shape));
      node.out.push_back(w);
    } else {
      Value v;
      v.name = (name.empty() ? op : name) + (specs.size() > 1 ? "." + std::to_string(k) : "");
      v.shape = specs[k].shape;
      v.dtype = specs[k].dtype;
      v.role = ValueRole::Activation;
      v.producer = node_index;
      v.requires_grad = !backward && any_requires_grad;
      values.push_back(v);
      node.out.push_back(static_cast<int>(values.size()) - 1);
    }
  }
  nodes.push_back(std::move(node));
  return nodes.back().out;
}

void Graph::mark_output(int value) {
  FERRY_CHECK(value >= 0 && values[value].role == ValueRole::Activation, "only activations can be outputs");
  values[value].role = ValueRole::Output;
}

std::string Graph::node_name(const Node& n) const {
  std::string s = values[n.out[0]].name;
  if (n.out.size() > 1) {
    const auto dot = s.rfind('.');
    if (dot != std::string::npos) s.resize(dot);
  }
  return s;
}

int Graph::param_index(const std::string& name) const {
  for (size_t i = 0; i < params.size(); ++i)
    if (params[i].name == name) return static_cast<int>(i);
  return -1;
}

int64_t Graph::param_count() const {
  int64_t n = 0;
  for (const auto& p : params) n += p.numel;
  return n;
}

int64_t Graph::storage_size() const {
  if (params.empty()) return 0;
  return static_cast<int64_t>(align_storage(params.back().storage + static_cast<size_t>(params.back().storage_numel)));
}

std::string Graph::describe() const {
  std::ostringstream os;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node& n = nodes[i];
    os << i << (n.backward ? " B " : " F ") << n.op << " (";
    for (size_t k = 0; k < n.in.size(); ++k) os << (k ? ", " : "") << (n.in[k] >= 0 ? values[n.in[k]].name : "-");
    os << ") -> (";
    for (size_t k = 0; k < n.out.size(); ++k)
      os << (k ? ", " : "") << (n.out[k] >= 0 ? values[n.out[k]].name + shape_str(values[n.out[k]].shape) : "-");
    os << ")\n";
  }
  return os.str();
}

}  // namespace ferry
