// parallel/communicator_mpi.h — MPI: host buffers, so every parallel layout runs on a CPU-only
// machine (`mpirun -np 8 --oversubscribe` on two cores). Built only when MPI is found
// (FERRY_WITH_MPI); callers guard their use with `#if FERRY_WITH_MPI`.
//
// Deterministic sums: MPI_Allreduce does not promise the same summation order for every message
// size and process layout, so float/double sums never use it. reduce_scatter is an MPI_Alltoall
// followed by a local fold of the p contributions in rank order, ((x0 + x1) + x2) + …; all_reduce
// is the same fold over near-equal blocks (MPI_Alltoallv) followed by MPI_Allgatherv. The result
// is bitwise the left fold in rank order, on every rank and every run, whatever algorithm MPI
// picks; it moves 2·(p−1)/p of the buffer per rank, like a ring all-reduce. Max and int32 sums are
// exact in any order and use MPI_Allreduce.
#pragma once
#include <chrono>
#include <memory>

#include "parallel/communicator.h"
#include "parallel/launch_env.h"

namespace ferry::parallel {

// MPI's lifetime for this process (RAII): MPI_Init_thread (MPI_THREAD_MULTIPLE requested, so that
// the watchdog thread may abort) unless MPI is already up, an error handler on MPI_COMM_WORLD that
// calls abort_world("MPI error: …") instead of returning error codes, and MPI_Finalize at the end
// if this object started MPI. Communicators must be destroyed before it.
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  const MpiPlacement& placement() const { return placement_; }
  // The launcher's view checked against MPI's (see reconcile_with_mpi).
  const LaunchEnv& launch() const { return launch_; }
  // True while MPI is initialized and not finalized.
  static bool active();

 private:
  bool started_here_ = false;
  MpiPlacement placement_;
  LaunchEnv launch_;
};

struct MpiOptions {
  // Every blocking operation that takes longer aborts the job naming it; 0 = no watchdog.
  std::chrono::milliseconds collective_timeout{0};
};

// A duplicate of MPI_COMM_WORLD (ferry's messages never meet anyone else's). Needs an MpiSession.
// Sub-communicators made by split() share its watchdog.
std::unique_ptr<Communicator> make_mpi_world_communicator(const MpiOptions& options = {});

}  // namespace ferry::parallel
