// parallel/communicator_nccl.h — NCCL: device buffers, one rank per GPU. Built only with CUDA and
// NCCL (FERRY_WITH_NCCL); callers guard their use with `#if FERRY_WITH_NCCL`.
//
// Bootstrap: rank 0 of a host communicator (MPI, or the single one) makes the ncclUniqueId and
// broadcasts it; every rank then joins with ncclCommInitRank on its own GPU. NCCL refuses two ranks
// on one device, so on a one-GPU machine only the one-rank communicator can be tested.
//
// Operations are enqueued on the communicator's stream and return at once (the stream orders what
// follows); barrier() alone waits on the host. A sub-communicator from split() (ncclCommSplit) gets
// its own non-blocking stream, owned by it: the collectives of different groups (the DP buckets, the
// TP all-reduces, the norm's sum) are ordered against the compute stream by events, not behind each
// other, and may run at once; every rank issues them in the same order. Sums: NCCL's order is fixed for a given communicator size, algorithm and
// protocol, so runs repeat bitwise; pin NCCL_ALGO/NCCL_PROTO to make a run independent of NCCL's
// tuning tables too.
//
// Failures: a watchdog thread polls ncclCommGetAsyncError and the completion of every operation
// (a CUDA event recorded after it). An async error, or an operation pending past
// collective_timeout, calls ncclCommAbort (which releases kernels waiting on a dead peer) and then
// abort_world, naming the operation. During CUDA-graph capture operations cannot be timed one by
// one: only the async-error check runs, and the executor bounds the replay with its own wait.
#pragma once
#include <chrono>
#include <memory>

#include "parallel/communicator.h"

struct CUstream_st;  // cudaStream_t, without including the CUDA runtime here

namespace ferry::parallel {

struct NcclOptions {
  int device = 0;                  // the GPU this rank drives: gpu_for_rank(launch env, GPUs per node)
  CUstream_st* stream = nullptr;   // where operations go; nullptr: a new non-blocking stream owned by the communicator
  std::chrono::milliseconds collective_timeout{std::chrono::minutes(5)};
};

// Collective over `bootstrap` (a host communicator); the NCCL communicator has its ranks.
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap, const NcclOptions& options);

}  // namespace ferry::parallel
