// tests/parallel/mpi_probe.cpp — ferry_mpi_probe: a tiny MPI program for launch and failure tests.
//
//   ferry_mpi_probe ping [steps]   every rank all-reduces a per-step value and prints one line per
//                                  step; the lines prove the ranks ran in step (Slurm test)
//   ferry_mpi_probe sigkill        rank 1 kills itself with SIGKILL while the others wait in a collective
//   ferry_mpi_probe abort          rank 1 calls abort_world while the others wait in a collective
//   ferry_mpi_probe hang           rank 1 never joins; the others' watchdog (2 s) ends the job
//   ferry_mpi_probe mpi-error      rank 1 makes an invalid MPI call; the error handler ends the job
//   ferry_mpi_probe exit           rank 1's body returns status 4 (inside run_rank)
//   ferry_mpi_probe user-error     rank 1's body throws a UserError (inside run_rank): the job exits 2
// The failure modes never exit 0: if the job survives the failure, the probe says so and exits 3.
#include <mpi.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "parallel/communicator_mpi.h"
#include "base/error.h"
#include "parallel/failure.h"

using namespace ferry::parallel;

namespace {

int ping(Communicator& world, const LaunchEnv& launch, int steps) {
  const int r = world.rank(), p = world.size();
  std::printf("ferry-ping: rank %d of %d launcher %s local %d of %d\n", r, p, launch.launcher.c_str(),
              launch.local_rank, launch.local_size);
  std::fflush(stdout);
  for (int step = 0; step < steps; ++step) {
    // Each rank adds (rank + 1)·(step + 1): the sum is p(p+1)/2·(step + 1) only if every rank
    // contributed to this very step.
    int32_t value = (r + 1) * (step + 1);
    world.all_reduce(&value, 1, DType::i32, ReduceOp::sum);
    const int32_t expected = p * (p + 1) / 2 * (step + 1);
    std::printf("ferry-ping: step %d rank %d sum %d\n", step, r, value);
    std::fflush(stdout);
    if (value != expected) abort_world("ping step " + std::to_string(step) + " summed to " + std::to_string(value) +
                                       ", expected " + std::to_string(expected));
  }
  world.barrier();
  return 0;
}

// The ranks that stay healthy wait here, in a collective the failing rank never joins.
void wait_in_collective(Communicator& world) {
  int32_t flag = 1;
  world.all_reduce(&flag, 1, DType::i32, ReduceOp::sum);
}

}  // namespace

int main(int argc, char** argv) {
  MpiSession mpi(&argc, &argv);
  const std::string mode = argc > 1 ? argv[1] : "ping";
  MpiOptions options;
  if (mode == "hang") options.collective_timeout = std::chrono::seconds(2);
  auto world = make_mpi_world_communicator(options);
  const int r = world->rank();
  if (mode == "ping") return ping(*world, mpi.launch(), argc > 2 ? std::atoi(argv[2]) : 5);

  if (world->size() < 2) abort_world("mode " + mode + " needs at least 2 ranks");
  world->barrier();  // every rank is up before one of them fails
  if (r == 1) {
    if (mode == "sigkill") {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      raise(SIGKILL);
    } else if (mode == "abort") {
      abort_world("probe: deliberate failure");
    } else if (mode == "hang") {
      for (;;) pause();
    } else if (mode == "exit") {
      return run_rank([] { return 4; });
    } else if (mode == "user-error") {
      return run_rank([]() -> int { throw ferry::UserError("probe.toml: [train] batch_size must be positive"); });
    } else if (mode == "mpi-error") {
      int32_t x = 0;
      MPI_Send(&x, -1, MPI_INT32_T, 0, 0, MPI_COMM_WORLD);  // a negative count is an MPI error
    } else {
      abort_world("unknown probe mode '" + mode + "'");
    }
  }
  wait_in_collective(*world);
  std::fprintf(stderr, "ferry-probe: rank %d: the job survived mode %s\n", r, mode.c_str());
  return 3;
}
