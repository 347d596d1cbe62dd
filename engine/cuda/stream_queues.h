// engine/cuda/stream_queues.h — a step's two queues (engine/train/step_queues.h) on CUDA streams,
// seen from host code that needs no CUDA headers: the one implementation of record and wait that
// every collective issued into a step uses (the CUDA device step's DP buckets, the tensor-parallel
// all-reduces and the gradient norm's sum of parallel/device_collectives.h).
//
//   compute   the CUDA backend's stream
//   comm      a device communicator's stream (Communicator::device_stream())
//   record    cudaEventRecord on the queue's stream
//   wait      cudaStreamWaitEvent: the queue's later work waits for the event, the host does not
//
// An event is made (cudaEventDisableTiming) the first time its number is named — in the eager
// first step, before any capture — reused by every later record of that number, and destroyed
// with the object: keep the object as long as a captured graph that names its events can replay.
#pragma once
#include <memory>

#include "engine/backend.h"
#include "engine/train/step_queues.h"

namespace ferry::gpu {

// `backend` must be the CUDA backend, `comm_stream` a cudaStream_t (not null). A build without
// CUDA: an internal error.
std::unique_ptr<StepQueues> make_stream_queues(Backend& backend, void* comm_stream);

}  // namespace ferry::gpu
