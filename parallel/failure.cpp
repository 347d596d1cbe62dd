// parallel/failure.cpp
#include "parallel/failure.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "parallel/launch_env.h"

#if FERRY_WITH_MPI
#include <mpi.h>
#endif

namespace ferry::parallel {
namespace {
std::atomic<int> g_rank{-1};
}

void set_failure_rank(int rank) { g_rank.store(rank); }

int failure_rank() {
  const int r = g_rank.load();
  if (r >= 0) return r;
  try {
    return detect_launch_env().rank;
  } catch (...) {
    return 0;  // a malformed launcher variable must not hide the original failure
  }
}

void abort_world(const std::string& why) {
  // One write, so that lines from different ranks do not interleave mid-line.
  const std::string line = "ferry: rank " + std::to_string(failure_rank()) + ": " + why + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
#if FERRY_WITH_MPI
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, 1);
#endif
  std::_Exit(1);
}

}  // namespace ferry::parallel
