// engine/op.h — the op registry. Each op declares, in one place (engine/ops/<family>.cpp):
//   infer     output shapes and dtypes from the inputs and attributes
//   backward  a rule that emits backward nodes through the Autodiff interface (null: no gradient)
//   kernels   one function per backend that runs it on bound tensors
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "engine/graph.h"

namespace ferry {

class Backend;
class Autodiff;

struct OutputSpec {
  Shape shape;
  DType dtype;
};

struct KernelCall {
  const Node& node;
  std::vector<Tensor> in;   // null tensors where the node's input is -1
  std::vector<Tensor> out;  // null tensors where the node's output is -1
  Backend& backend;
  bool training;            // false on evaluation passes (skip work only backward needs)
};

using KernelFn = std::function<void(KernelCall&)>;

struct OpDef {
  std::string name;
  std::function<std::vector<OutputSpec>(const Graph&, const Node&)> infer;
  std::function<void(Autodiff&, int node)> backward;
  KernelFn cpu;
  KernelFn cuda;
  // Output `inplace_out` may share memory with input `inplace_in` when that input dies at this node
  // (cross-entropy writes dlogits over the logits).
  int inplace_out = -1;
  int inplace_in = -1;
};

void register_op(OpDef def);
// Attaches (or replaces) one backend's kernel of an op defined elsewhere: the CUDA kernels live in
// engine/cuda/ and attach themselves when the CUDA backend starts, so CPU-only files stay CPU-only.
void set_op_kernel(const std::string& op, Device device, KernelFn fn);
const OpDef& op_def(const std::string& name);
bool has_op(const std::string& name);

}  // namespace ferry
