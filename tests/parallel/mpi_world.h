// tests/parallel/mpi_world.h — what an mpi test shares, provided by tests/parallel/mpi_main.cpp.
#pragma once
#include <cstdint>

#include "parallel/communicator.h"

namespace ferry::test {

// MPI_COMM_WORLD as a ferry communicator, with a 60 s collective watchdog: a test that fails on
// one rank and leaves the others waiting ends the job instead of hanging until ctest's timeout.
parallel::Communicator& mpi_world();

// One seed for the whole job (rank 0's, broadcast): FERRY_TEST_SEED when set, else the clock.
uint64_t mpi_test_seed();

}  // namespace ferry::test
