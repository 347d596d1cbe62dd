// parallel/job_world.h — the communicator over every rank of this job.
//
// `ferry` sets it up in main() when a launcher (mpirun, srun) started the process: an MPI world.
// Otherwise, and in library use that never calls set_job_world, it is a world of one.
#pragma once
#include <memory>

#include "parallel/communicator.h"

namespace ferry::parallel {

Communicator& job_world();
// Replaces the job's world (nullptr: back to a world of one). The owner must reset it before MPI ends.
void set_job_world(std::unique_ptr<Communicator> world);

}  // namespace ferry::parallel
