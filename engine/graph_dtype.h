// engine/graph_dtype.h — one graph in another float type. The CUDA backend runs bf16 graphs (fp32
// statistics, losses and master weights; engine/cuda/), the CPU backend fp32 or fp64 ones. Builders
// that know their backend pick the dtype themselves (make_gpt_step); the fine-tuning task graphs are
// built once in fp32 whatever the device, and the step runner and Inference hand them to the device's
// dtype here, before planning memory or deriving the backward pass.
#pragma once
#include "engine/graph.h"

namespace ferry {

// Every Input and Param of dtype `from` becomes `to`, and every activation takes the dtype its op's
// inference rule gives on the retyped inputs (so statistics and losses stay fp32 under bf16).
// Only before autodiff (a forward-only graph). Returns whether anything changed.
bool retype_graph(Graph& g, DType from, DType to);

// The float dtype `device`'s kernels take for a graph built in fp32: bf16 on CUDA; the CPU keeps
// fp32 (and fp64 graphs stay fp64 everywhere).
void retype_for_device(Graph& g, Device device);

}  // namespace ferry
