// parallel/failure.h — how one rank's failure ends the whole job.
//
// The rule (issue 5): a failure on any rank ends the job with a non-zero exit and a message naming
// the rank and the cause, within 60 s; never a hang. Three paths lead here:
//   - ferry code that cannot go on calls abort_world(why);
//   - an MPI error calls it through the error handler MpiSession installs (communicator_mpi.cpp);
//   - a collective that does not finish in time calls it from a CollectiveWatchdog (watchdog.h).
//   - a rank's body that throws or returns non-zero ends the job through run_rank();
// A rank that dies outright (SIGKILL, OOM killer) is noticed by mpirun / srun, which kill the rest.
// What does NOT work: a rank that just returns from main with a non-zero status after
// MPI_Finalize while the others wait in a collective; OpenMPI 4.1 then hangs (measured). Hence
// run_rank().
#pragma once
#include <functional>
#include <string>

namespace ferry::parallel {

// Prints "ferry: rank R: why" to stderr and ends every rank of the job with `status`: MPI_Abort on
// MPI_COMM_WORLD when MPI is running, otherwise this process alone exits. Safe from any thread.
[[noreturn]] void abort_world(const std::string& why, int status = 1);

// Runs the body of a rank. In a world of more than one rank, an exception escaping `body` or a
// non-zero status ends every rank through abort_world: UserError keeps the command line's status 2,
// anything else is 1. In a world of one (or without MPI) it behaves as if `body` ran alone:
// exceptions propagate and the status is returned.
int run_rank(const std::function<int()>& body);

// The rank abort_world names: the world rank once MPI is up, else the launcher's, else 0.
// Set by MpiSession; exposed so that other messages can carry the same prefix.
void set_failure_rank(int rank);
int failure_rank();

}  // namespace ferry::parallel
