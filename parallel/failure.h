// parallel/failure.h — how one rank's failure ends the whole job.
//
// The rule (issue 5): a failure on any rank ends the job with a non-zero exit and a message naming
// the rank and the cause, within 60 s; never a hang. Three paths lead here:
//   - ferry code that cannot go on calls abort_world(why);
//   - an MPI error calls it through the error handler MpiSession installs (communicator_mpi.cpp);
//   - a collective that does not finish in time calls it from a CollectiveWatchdog (watchdog.h).
// A rank that dies outright (SIGKILL, OOM killer) is noticed by mpirun / srun, which kill the rest.
#pragma once
#include <string>

namespace ferry::parallel {

// Prints "ferry: rank R: why" to stderr and ends every rank of the job: MPI_Abort on
// MPI_COMM_WORLD when MPI is running, otherwise this process alone exits with status 1.
// Safe to call from any thread.
[[noreturn]] void abort_world(const std::string& why);

// The rank abort_world names: the world rank once MPI is up, else the launcher's, else 0.
// Set by MpiSession; exposed so that other messages can carry the same prefix.
void set_failure_rank(int rank);
int failure_rank();

}  // namespace ferry::parallel
