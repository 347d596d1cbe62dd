// engine/planner.h — static memory planning for one training step.
//
// Every arena value (inputs, activations, outputs; forward and backward) gets a live range over the
// schedule: from the node that writes it to the last node that reads it; inputs and outputs span
// the whole step. Values whose ranges do not intersect may share bytes; ops may declare an in-place pair
// (an output written over an input that dies at that node). Offsets are assigned greedily, largest
// first, at the lowest address that clashes with no value live at the same time. The peak is known
// before anything is allocated.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/graph.h"

namespace ferry {

struct LiveRange {
  int first = -1;
  int last = -1;
  bool overlaps(const LiveRange& o) const { return first <= o.last && o.first <= last; }
};

struct MemoryPlan {
  std::vector<int64_t> offset;      // byte offset per value in the arena; -1 for params/grads
  std::vector<LiveRange> live;      // per value (arena values only)
  std::vector<int> buffer_of;       // per value: in-place group id (-1 outside the arena)
  size_t arena_bytes = 0;           // the planned peak
  size_t unshared_bytes = 0;        // sum of all arena values' sizes (what no planning would cost)
  size_t param_bytes = 0;           // flat parameter buffer (Graph::storage_size elements)
  size_t grad_bytes = 0;            // flat gradient buffer (the same, once autodiff made gradients)
};

// alignment: of every arena offset (and size); 256 bytes, so every activation starts where
// 128-byte vector and tensor-core loads want it, as the flat parameter buffers do (graph.h).
MemoryPlan plan_memory(const Graph& g, size_t alignment = 256);

// Throws InternalError naming the two values if any pair that is live at the same time overlaps in
// memory (in-place pairs excepted). Used by the tests and, cheaply, after every planning.
void verify_plan(const Graph& g, const MemoryPlan& plan);

std::string format_bytes(double bytes);

}  // namespace ferry
