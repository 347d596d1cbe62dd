// tests/parallel/mpi_main.cpp — the gtest main of every *_mpi_test (see tests/mpi.cmake).
// Rank 0 prints as usual; the other ranks print only their failures, prefixed with the rank, so
// a failure on one rank is never lost. The job passes only if every rank passed; it reports
// "skipped" to ctest (exit 77, tests/support/skip_verdict.h) only if no rank failed and some rank's
// run says skipped, so every rank exits with the same status and mpirun passes it on.
#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "parallel/communicator_mpi.h"
#include "tests/parallel/mpi_world.h"
#include "tests/support/skip_verdict.h"

#ifndef FERRY_GPU_TEST_MAIN
#define FERRY_GPU_TEST_MAIN 0
#endif

namespace ferry::test {
namespace {

std::unique_ptr<parallel::Communicator> g_world;

class RankFailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (!r.failed()) return;
    std::fprintf(stderr, "[rank %d] %s:%d: failure\n%s\n", rank_, r.file_name() ? r.file_name() : "?",
                 r.line_number(), r.message());
  }

 private:
  int rank_;
};

}  // namespace

parallel::Communicator& mpi_world() { return *g_world; }

uint64_t mpi_test_seed() {
  static const uint64_t seed = [] {
    uint64_t s = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    if (const char* env = std::getenv("FERRY_TEST_SEED")) s = std::strtoull(env, nullptr, 10);
    int32_t words[2] = {static_cast<int32_t>(s & 0xffffffffu), static_cast<int32_t>(s >> 32)};
    g_world->broadcast(words, 2, parallel::DType::i32, 0);
    const uint64_t agreed = static_cast<uint32_t>(words[0]) | (static_cast<uint64_t>(static_cast<uint32_t>(words[1])) << 32);
    ::testing::Test::RecordProperty("seed", std::to_string(agreed));
    return agreed;
  }();
  return seed;
}

}  // namespace ferry::test

int main(int argc, char** argv) {
  ferry::parallel::MpiSession mpi(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  const int rank = mpi.placement().rank;
  if (rank != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new ferry::test::RankFailurePrinter(rank));
  }
  int verdict[2] = {0, 0};  // failed, skipped (in skip_verdict.h's sense) on this rank
  {
    ferry::parallel::MpiOptions options;
    options.collective_timeout = std::chrono::seconds(60);
    ferry::test::g_world = ferry::parallel::make_mpi_world_communicator(options);
    verdict[0] = RUN_ALL_TESTS() != 0 ? 1 : 0;
    verdict[1] = ferry::test::skip_aware_exit_status(verdict[0] != 0, *::testing::UnitTest::GetInstance(),
                                                     FERRY_GPU_TEST_MAIN != 0) == ferry::test::kSkipExitCode;
    ferry::test::g_world.reset();
  }
  MPI_Allreduce(MPI_IN_PLACE, verdict, 2, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return verdict[0] ? 1 : verdict[1] ? ferry::test::kSkipExitCode : 0;
}
