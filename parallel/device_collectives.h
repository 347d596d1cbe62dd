// parallel/device_collectives.h — a collective inside a training step, issued in the order of the
// step's queues (engine/train/step_queues.h): what the tensor-parallel ops' kernels (CPU and CUDA,
// parallel/tensor_parallel_ops*.cpp) and the runner's gradient norm under TP use, one function for
// every backend and communicator.
//
//   device communicator (NCCL)   record compute F → wait comm F → all_reduce on the communicator's
//                                stream → record comm J → wait compute J (F, J: kCollectiveFork,
//                                kCollectiveJoin of engine/train/step_queues.h). No host wait, so the call can be captured in (and
//                                replayed from) a CUDA graph; on the CUDA backend the queues are
//                                engine/cuda/stream_queues.h's
//   host communicator (MPI) on   downloaded into pinned host memory (one buffer, reused), reduced on
//   the CUDA backend             the host, uploaded: the host waits for the stream, so it cannot be
//                                captured (an internal error while a capture runs); steps with one
//                                run eagerly. The queues are not used
//   the CPU backend, host memory the communicator directly: done when it returns (ImmediateQueues)
//   one rank                     nothing to do (no copy, no wait)
//
// The queues come from the group's registration (parallel/collective_groups.h): the runner sets the
// CUDA ones for its TP group and keeps the norm's with its reduction; a test installs recording ones
// (tests/parallel/tp_schedule_mpi_test.cpp checks the order without a GPU).
#pragma once
#include <cstddef>
#include <memory>

#include "engine/backend.h"
#include "engine/train/step_queues.h"
#include "kernels/dtype.h"
#include "parallel/communicator.h"

namespace ferry::parallel {

// `count` elements at `data` (device memory on the CUDA backend), all-reduced in place over `comm`.
void issue_all_reduce(Backend& backend, StepQueues& queues, Communicator& comm, void* data, size_t count, DType type,
                      ReduceOp op);

// bf16 device memory (CUDA backend) at `data`, widened into `scratch` (device memory, `count`
// floats) on the compute queue, summed in fp32 through issue_all_reduce, rounded back once on the
// compute queue.
void issue_all_reduce_bf16(Backend& backend, StepQueues& queues, Communicator& comm, ferry::bf16* data, size_t count,
                           float* scratch, ReduceOp op);

// The queues for collectives over `comm` on `backend`: CUDA streams and events for a device
// communicator on the CUDA backend (the backend's stream and comm.device_stream()), ImmediateQueues
// otherwise.
std::unique_ptr<StepQueues> make_collective_queues(Backend& backend, Communicator& comm);

// A registered group (collective_groups.h) as a kernel sees it: all_reduce goes through
// issue_all_reduce on the group's communicator and queues.
struct GroupCollectives {
  Backend& backend;
  StepQueues& queues;
  Communicator& comm;
  void all_reduce(void* data, size_t count, DType type, ReduceOp op) const {
    issue_all_reduce(backend, queues, comm, data, count, type, op);
  }
  void all_reduce_bf16(ferry::bf16* data, size_t count, float* scratch, ReduceOp op) const {
    issue_all_reduce_bf16(backend, queues, comm, data, count, scratch, op);
  }
};

// Group `id` of collective_groups.h, for a kernel running on `backend`.
GroupCollectives group_collectives(Backend& backend, int id);

}  // namespace ferry::parallel
