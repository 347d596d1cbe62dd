// engine/cuda/cuda_backend.h — the CUDA execution backend, seen from host code that needs no CUDA
// headers. Device 0, one non-blocking stream that every copy, memset and kernel of a run is queued
// on (so a whole step can be captured as one CUDA graph), the planner's arena and the flat buffers as
// plain device allocations. Its kernels (engine/cuda/cuda_ops.cpp) attach to the ops on first use.
//
// Graphs run on it in bf16: build them with GptBuildOptions::dtype = DType::BF16 (parameters,
// gradients, activations bf16; statistics, log-sum-exps and losses fp32, see statistics_dtype).
#pragma once
#include <memory>

#include "engine/backend.h"

namespace ferry {

// Whether this binary contains the CUDA backend (built with nvcc present).
bool cuda_backend_built();

// The backend on device 0. Throws UserError naming the reason when the build lacks CUDA or no
// device is usable.
std::unique_ptr<Backend> make_cuda_backend();

}  // namespace ferry
