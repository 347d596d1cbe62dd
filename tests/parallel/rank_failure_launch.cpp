// tests/parallel/rank_failure_launch.cpp — a failure on one rank ends the whole job, non-zero,
// within 60 s, with a message naming the rank and the cause (issue 5). Each test launches
// ferry_mpi_probe with 2 ranks under `timeout 90 mpirun`: exit 124 would mean the job hung.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <string>
#include <sys/wait.h>

namespace {

struct Launch {
  int exit_code;
  double seconds;
  std::string out;
};

Launch launch_probe(const std::string& mode) {
  const std::string cmd = std::string("timeout 90 ") + FERRY_MPIRUN + " -np 2 " + FERRY_MPI_PROBE + " " + mode + " 2>&1";
  const auto start = std::chrono::steady_clock::now();
  FILE* p = popen(cmd.c_str(), "r");
  Launch l{-1, 0, {}};
  if (!p) return l;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) l.out.append(buf.data(), n);
  const int status = pclose(p);
  l.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  l.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return l;
}

void expect_job_ended(const Launch& l) {
  EXPECT_NE(l.exit_code, 0) << l.out;
  EXPECT_NE(l.exit_code, 124) << "mpirun hung until timeout killed it\n" << l.out;
  EXPECT_NE(l.exit_code, 3) << "a healthy rank got past the collective the failed rank never joined\n" << l.out;
  EXPECT_LT(l.seconds, 60.0) << l.out;
}

TEST(RankFailure, PingSucceedsSoTheFailuresBelowAreTheProbesOwn) {
  const Launch l = launch_probe("ping 3");
  EXPECT_EQ(l.exit_code, 0) << l.out;
  EXPECT_NE(l.out.find("ferry-ping: step 2 rank 1 sum 9"), std::string::npos) << l.out;
}

TEST(RankFailure, RankKilledBySigkillEndsTheJob) {
  const Launch l = launch_probe("sigkill");
  expect_job_ended(l);
  // OpenMPI names the dead rank and the signal.
  EXPECT_NE(l.out.find("rank 1"), std::string::npos) << l.out;
  EXPECT_NE(l.out.find("signal 9"), std::string::npos) << l.out;
}

TEST(RankFailure, AbortWorldNamesRankAndCause) {
  const Launch l = launch_probe("abort");
  expect_job_ended(l);
  EXPECT_NE(l.out.find("ferry: rank 1: probe: deliberate failure"), std::string::npos) << l.out;
}

TEST(RankFailure, MpiErrorAbortsTheWorldThroughTheHandler) {
  const Launch l = launch_probe("mpi-error");
  expect_job_ended(l);
  EXPECT_NE(l.out.find("ferry: rank 1: MPI error:"), std::string::npos) << l.out;
}

TEST(RankFailure, NonZeroStatusFromARanksBodyEndsTheJob) {
  const Launch l = launch_probe("exit");
  expect_job_ended(l);
  EXPECT_NE(l.out.find("ferry: rank 1: exiting with status 4"), std::string::npos) << l.out;
}

TEST(RankFailure, UserErrorOnOneRankEndsTheJobWithStatusTwo) {
  const Launch l = launch_probe("user-error");
  expect_job_ended(l);
  EXPECT_EQ(l.exit_code, 2) << l.out;
  EXPECT_NE(l.out.find("ferry: rank 1: probe.toml: [train] batch_size must be positive"), std::string::npos) << l.out;
}

TEST(RankFailure, HungPeerIsEndedByTheCollectiveWatchdog) {
  const Launch l = launch_probe("hang");
  expect_job_ended(l);
  EXPECT_NE(l.out.find("ferry: rank 0: MPI all_reduce (rank 0 of 2) did not complete within 2 s"), std::string::npos)
      << l.out;
}

}  // namespace
