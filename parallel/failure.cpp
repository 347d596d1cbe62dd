// parallel/failure.cpp
#include "parallel/failure.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "base/error.h"
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

namespace {
bool world_has_peers() {
#if FERRY_WITH_MPI
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) {
    int size = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    return size > 1;
  }
#endif
  return false;
}
}  // namespace

void abort_world(const std::string& why, int status) {
  // One write, so that lines from different ranks do not interleave mid-line.
  const std::string line = "ferry: rank " + std::to_string(failure_rank()) + ": " + why + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
#if FERRY_WITH_MPI
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, status);
#endif
  std::_Exit(status);
}

int run_rank(const std::function<int()>& body) {
  if (!world_has_peers()) return body();
  int status = 0;
  try {
    status = body();
  } catch (const UserError& e) {
    abort_world(e.what(), 2);
  } catch (const std::exception& e) {
    abort_world(e.what(), 1);
  } catch (...) {
    abort_world("unknown exception", 1);
  }
  if (status != 0) abort_world(str_cat("exiting with status ", status), status);
  return 0;
}

}  // namespace ferry::parallel
