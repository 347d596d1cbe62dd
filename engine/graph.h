// engine/graph.h — the static graph IR.
//
// A run builds its graph once from a model config and a fixed batch shape. Values are SSA tensors
// (shape, dtype, role); nodes are ops at kernel granularity. Forward nodes come first, then the
// backward nodes autodiff appends; the node order is the schedule the planner and executor follow.
//
// Roles:
//   Input       written by the host before a step (tokens, targets, key lengths)
//   Param       a trainable or frozen parameter, stored in the flat parameter buffer
//   ParamGrad   its gradient, in the flat gradient buffer; backward kernels ACCUMULATE into it
//   Activation  everything else; lives in the planner's arena; kernels WRITE it
//   Output      an activation read by the host after the step (the loss); kept to the end
#pragma once
#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace ferry {

enum class ValueRole : uint8_t { Input, Param, ParamGrad, Activation, Output };

struct Value {
  std::string name;
  Shape shape;
  DType dtype = DType::F32;
  ValueRole role = ValueRole::Activation;
  int producer = -1;   // node index, -1 for inputs and parameters
  int param = -1;      // index into Graph::params for Param / ParamGrad
  bool requires_grad = false;
  size_t nbytes() const { return static_cast<size_t>(numel(shape)) * dtype_size(dtype); }
};

// Numeric attributes of a node (flags are 0/1). Kept as one map so that ops stay plain data.
struct Attrs {
  std::map<std::string, double> values;
  Attrs() = default;
  Attrs(std::initializer_list<std::pair<const std::string, double>> init) : values(init) {}
  double get(const std::string& key, double fallback = 0.0) const {
    auto it = values.find(key);
    return it == values.end() ? fallback : it->second;
  }
  int i(const std::string& key, int fallback = 0) const { return static_cast<int>(get(key, fallback)); }
  bool flag(const std::string& key) const { return get(key) != 0.0; }
};

struct Node {
  std::string op;
  std::vector<int> in;   // value ids (-1: optional input absent)
  std::vector<int> out;  // value ids (-1: output not wanted; the kernel gets a null tensor)
  Attrs attrs;
  bool backward = false;
};

// Two layouts of the parameters (and of everything shaped like them: gradients, AdamW's moments):
//   logical  dense, in declaration order: ParamInfo::offset, numel elements each. What checkpoints,
//            model files and every host array of parameters hold, whatever the device or layout.
//   storage  the executor's flat buffers: each parameter starts at ParamInfo::storage, a multiple
//            of kParamAlignment elements (128 bytes in bf16, 256 in fp32), so that vector loads and
//            cuBLASLt see aligned pointers whatever the sizes before it (a classifier's bias of
//            n_classes elements). The gaps between parameters are zero and stay zero (nothing writes
//            them; AdamW leaves a zero parameter with a zero gradient at zero).
// A parameter may also carry padding rows: the token embedding / LM head of a vocabulary padded to
// a multiple of 128 (engine/model/gpt.h) has shape [Vp, C], of which the first V rows are real.
// Only those are in the logical order (numel = V·C); the padding rows live in the storage order
// only, zero for ever (their gradient is exactly zero: cross_entropy gives padded logits none).
// scatter_to_storage / gather_from_storage move a host array between the two.
inline constexpr int64_t kParamAlignment = 64;

struct ParamInfo {
  std::string name;
  int value = -1;
  int grad = -1;           // ParamGrad value, -1 while frozen or before autodiff
  bool trainable = true;
  bool weight_decay = true;  // GPT-2 convention: matrices decay, biases and norms do not
  int layer = -1;            // transformer block index; -1 for embeddings/head/final norm
  float lr_scale = 1.0f;     // layer-wise learning rates multiply into the schedule's rate
  size_t offset = 0;         // element offset in the logical (dense) order: checkpoints, host arrays
  int64_t numel = 0;         // elements in the logical order (padding rows excluded)
  int64_t padded_rows = 0;   // trailing rows of its shape that are padding (engine/model/gpt.h)
  size_t storage = 0;        // element offset in the executor's flat buffers (kParamAlignment-aligned)
  int64_t storage_numel = 0; // elements it spans there (its value's shape)
};

class Graph {
 public:
  int add_input(const std::string& name, Shape shape, DType dtype);
  // padded_rows: trailing rows of shape[0] that are padding (not in the logical order, see above).
  int add_param(const std::string& name, Shape shape, DType dtype, bool weight_decay, int layer,
                int64_t padded_rows = 0);
  // Appends a forward node; output shapes and dtypes come from the op's inference rule.
  std::vector<int> add(const std::string& op, std::vector<int> in, Attrs attrs = {}, const std::string& name = "");
  // Appends a node whose outputs are partly given: want[k] >= 0 reuses that value (a ParamGrad to
  // accumulate into), kNew creates a fresh activation, kSkip leaves output k unwritten.
  static constexpr int kNew = -1;
  static constexpr int kSkip = -2;
  std::vector<int> add_with_outputs(const std::string& op, std::vector<int> in, Attrs attrs,
                                    const std::vector<int>& want, bool backward, const std::string& name = "");
  void mark_output(int value);

  // The name a node's outputs were given (`add`'s name, without the ".k" of multi-output ops), so
  // graph rewrites can rebuild a node under the same name.
  std::string node_name(const Node& n) const;
  int param_index(const std::string& name) const;  // -1 when absent
  int64_t param_count() const;                     // elements over all parameters (the logical order's size)
  int64_t storage_size() const;                    // elements of the flat buffers (gaps included)
  std::string describe() const;                    // one line per node, for debugging

  std::vector<Value> values;
  std::vector<Node> nodes;
  std::vector<ParamInfo> params;
  int num_forward_nodes = 0;  // nodes [0, num_forward_nodes) are the forward pass
  int loss = -1;              // the scalar autodiff starts from
};

// A parameter's shape in the logical order: its value's shape without the padding rows.
inline Shape logical_shape(const Graph& g, const ParamInfo& p) {
  Shape s = g.values[p.value].shape;
  if (p.padded_rows) s[0] -= p.padded_rows;
  return s;
}

// A host array of parameters (or of anything shaped like them) from the logical order to the
// storage order and back. scatter writes only the parameters' elements of `storage` (the caller
// provides a zeroed buffer of storage_size()); gather writes all of `logical` (param_count()).
template <typename T>
void scatter_to_storage(const Graph& g, const T* logical, T* storage) {
  for (const ParamInfo& p : g.params)
    std::copy(logical + p.offset, logical + p.offset + p.numel, storage + p.storage);
}
template <typename T>
void gather_from_storage(const Graph& g, const T* storage, T* logical) {
  for (const ParamInfo& p : g.params)
    std::copy(storage + p.storage, storage + p.storage + p.numel, logical + p.offset);
}

}  // namespace ferry
