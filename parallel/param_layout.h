// parallel/param_layout.h — where a rank's parameters sit in the full (single-process) flat order.
//
// A rewritten graph (tensor-parallel shards, a pipeline stage) holds some of the model's parameters,
// some of them only in part. For every local parameter, ParamOrigin lists the runs of its elements
// in the full flat buffer, so that parameters(), optimizer state and checkpoints are gathered and
// scattered in one layout-independent order. `owner` says whether this rank is the one that writes
// the parameter when gathering and counts it in the global gradient norm: a replicated parameter
// (a layernorm under TP, the tied embedding on the first and last pipeline stages) has exactly one
// owner.
#pragma once
#include <cstddef>
#include <vector>

#include "engine/graph.h"

namespace ferry::parallel {

struct ParamRun {
  size_t local = 0;  // element offset from the start of the local parameter
  size_t full = 0;   // element offset in the full flat buffer
  size_t count = 0;
};

struct ParamOrigin {
  std::vector<ParamRun> runs;
  bool owner = true;
};

// Every parameter of g is itself, whole: the layout of an unrewritten graph.
std::vector<ParamOrigin> identity_origins(const Graph& g);

}  // namespace ferry::parallel
