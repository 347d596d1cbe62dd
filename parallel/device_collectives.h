// parallel/device_collectives.h — an all-reduce of device memory on the CUDA backend, through any
// communicator, in the order of the backend's stream: what the tensor-parallel ops' CUDA kernels
// (parallel/tensor_parallel_ops_cuda.cpp) and the runner's gradient norm under TP use.
//
//   device communicator (NCCL)   forked onto the communicator's stream by an event after the work
//                                issued so far, joined back by a second one: no host wait, so the
//                                call can be captured in (and replayed from) a CUDA graph
//   host communicator (MPI)      downloaded into pinned host memory (one buffer, reused), reduced
//                                on the host, uploaded: the host waits for the stream, so it
//                                cannot be captured (an internal error while a capture runs);
//                                steps with one run eagerly
//   one rank                     nothing to do (no copy, no wait)
// bf16 data is widened into an fp32 scratch for the sum and rounded back once.
#pragma once
#include <cstddef>

#include "engine/backend.h"
#include "kernels/dtype.h"
#include "parallel/communicator.h"

namespace ferry::parallel {

// `count` elements (f32 or f64) at device pointer `data`, in place.
void device_all_reduce(Backend& backend, Communicator& comm, void* data, size_t count, DType type, ReduceOp op);
// bf16 at `data`, summed in fp32 in `scratch` (device memory, `count` floats), rounded back once.
void device_all_reduce_bf16(Backend& backend, Communicator& comm, ferry::bf16* data, size_t count, float* scratch,
                            ReduceOp op);

}  // namespace ferry::parallel
