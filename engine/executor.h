// engine/executor.h — runs a planned graph on a backend.
//
// Owns the memory of one step: the activation arena (one allocation, offsets from the planner), the
// flat parameter buffer and the flat gradient buffer (ParamInfo::storage indexes both: the aligned
// storage order of graph.h, gaps zero). Before allocating anything it checks that the whole step
// fits the backend, and refuses with the figure.
#pragma once
#include <functional>
#include <vector>

#include "engine/backend.h"
#include "engine/graph.h"
#include "engine/planner.h"

namespace ferry {

class Executor {
 public:
  // extra_bytes: what else the run will hold on the device (optimizer state), for the fit check.
  // memory_limit: 0 = the backend's capacity.
  Executor(const Graph& g, Backend& backend, size_t extra_bytes = 0, size_t memory_limit = 0);

  const Graph& graph() const { return g_; }
  const MemoryPlan& plan() const { return plan_; }
  Backend& backend() const { return backend_; }

  Tensor tensor(int value) const;
  void set_input(int value, const void* host, size_t bytes);
  void read(int value, void* host, size_t bytes) const;
  double read_scalar(int value) const;

  void forward(bool training);  // the forward nodes
  void backward();              // the backward nodes
  void zero_grads();

  // Whole flat buffers, in the graph's parameter dtype and the storage order (Graph::storage_size
  // elements).
  Tensor params() const;
  Tensor grads() const;
  // The parameters from/to a host array in the logical order (what checkpoints hold), converted
  // to/from the graph's parameter dtype (bf16 rounded to nearest even); the gaps stay zero.
  void set_parameters(const std::vector<float>& logical);
  std::vector<float> parameters() const;

  // Runs after every node (data parallelism reduces a gradient bucket as soon as backward has
  // written the last contribution to it). Empty: nothing runs.
  void set_after_node(std::function<void(int node)> fn) { after_node_ = std::move(fn); }
  // Pipeline parallelism keeps one activation arena per micro-batch in flight: exchanges this
  // executor's arena with `other`, a buffer of plan().arena_bytes on the same backend.
  void swap_arena(DeviceBuffer& other);

 private:
  void run_nodes(int begin, int end, bool training);
  const Graph& g_;
  Backend& backend_;
  MemoryPlan plan_;
  DeviceBuffer arena_;
  DeviceBuffer params_;
  DeviceBuffer grads_;
  DType param_dtype_ = DType::F32;
  std::function<void(int)> after_node_;
};

}  // namespace ferry
