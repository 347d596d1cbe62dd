// tests/parallel/launch_env_test.cpp — rank, world and local placement read from each launcher's
// variables (fake environments), and the checks against MPI's own view.
#include <gtest/gtest.h>

#include "base/error.h"
#include "parallel/launch_env.h"

using namespace ferry::parallel;

namespace {

EnvMap openmpi(int rank, int size, int local_rank, int local_size) {
  return {{"OMPI_COMM_WORLD_RANK", std::to_string(rank)},
          {"OMPI_COMM_WORLD_SIZE", std::to_string(size)},
          {"OMPI_COMM_WORLD_LOCAL_RANK", std::to_string(local_rank)},
          {"OMPI_COMM_WORLD_LOCAL_SIZE", std::to_string(local_size)}};
}

EnvMap srun_step(int procid, int ntasks, int localid) {
  return {{"SLURM_PROCID", std::to_string(procid)},
          {"SLURM_NTASKS", std::to_string(ntasks)},
          {"SLURM_LOCALID", std::to_string(localid)},
          {"SLURM_STEP_ID", "0"}};
}

std::string user_error_of(const EnvMap& env) {
  try {
    detect_launch_env(env);
  } catch (const ferry::UserError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(LaunchEnv, NoLauncherIsRankZeroOfOne) {
  const LaunchEnv e = detect_launch_env(EnvMap{});
  EXPECT_EQ(e.launcher, "none");
  EXPECT_EQ(e.rank, 0);
  EXPECT_EQ(e.world_size, 1);
  EXPECT_EQ(e.local_rank, 0);
  EXPECT_EQ(e.local_size, 1);
}

TEST(LaunchEnv, OpenMpiVariablesGiveRankWorldAndLocalPlacement) {
  const LaunchEnv e = detect_launch_env(openmpi(13, 16, 5, 8));
  EXPECT_EQ(e.launcher, "openmpi");
  EXPECT_EQ(e.rank, 13);
  EXPECT_EQ(e.world_size, 16);
  EXPECT_EQ(e.local_rank, 5);
  EXPECT_EQ(e.local_size, 8);
}

TEST(LaunchEnv, MpirunInsideASlurmAllocationTrustsOpenMpiNotTheInheritedSlurmVariables) {
  EnvMap env = openmpi(3, 4, 1, 2);
  for (const auto& [k, v] : srun_step(0, 1, 0)) env[k] = v;
  const LaunchEnv e = detect_launch_env(env);
  EXPECT_EQ(e.launcher, "openmpi");
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.world_size, 4);
}

TEST(LaunchEnv, SrunStepWithTasksPerNodeGivesLocalSize) {
  EnvMap env = srun_step(6, 8, 2);
  env["SLURM_NTASKS_PER_NODE"] = "4";
  const LaunchEnv e = detect_launch_env(env);
  EXPECT_EQ(e.launcher, "slurm");
  EXPECT_EQ(e.rank, 6);
  EXPECT_EQ(e.world_size, 8);
  EXPECT_EQ(e.local_rank, 2);
  EXPECT_EQ(e.local_size, 4);
}

TEST(LaunchEnv, SrunStepReadsCompressedTasksPerNodeAtItsNode) {
  EnvMap env = srun_step(6, 7, 0);
  env["SLURM_TASKS_PER_NODE"] = "2(x3),1";
  env["SLURM_NODEID"] = "3";
  EXPECT_EQ(detect_launch_env(env).local_size, 1);
  env["SLURM_NODEID"] = "1";
  env["SLURM_LOCALID"] = "1";
  EXPECT_EQ(detect_launch_env(env).local_size, 2);
}

TEST(LaunchEnv, SrunStepCountsWinOverTheAllocationsItInherits) {
  // `srun -n 3` inside a 2 nodes × 4 tasks allocation (variables as Slurm 22.05 sets them).
  EnvMap env = srun_step(2, 8, 0);
  env["SLURM_NTASKS_PER_NODE"] = "4";
  env["SLURM_STEP_NUM_TASKS"] = "3";
  env["SLURM_STEP_TASKS_PER_NODE"] = "2,1";
  env["SLURM_NODEID"] = "1";
  const LaunchEnv e = detect_launch_env(env);
  EXPECT_EQ(e.world_size, 3);
  EXPECT_EQ(e.local_size, 1);
}

TEST(LaunchEnv, SlurmBatchScriptWithoutAStepIsOneProcess) {
  EnvMap env = srun_step(0, 2, 0);
  env.erase("SLURM_STEP_ID");
  EXPECT_EQ(detect_launch_env(env).launcher, "none");
  EXPECT_EQ(detect_launch_env(env).world_size, 1);
}

TEST(LaunchEnv, PmixGivesTheRankAndLeavesTheRestToMpi) {
  const LaunchEnv e = detect_launch_env(EnvMap{{"PMIX_RANK", "5"}});
  EXPECT_EQ(e.launcher, "pmix");
  EXPECT_EQ(e.rank, 5);
  EXPECT_EQ(e.world_size, 0);
  const LaunchEnv r = reconcile_with_mpi(e, MpiPlacement{5, 8, 1, 4});
  EXPECT_EQ(r.world_size, 8);
  EXPECT_EQ(r.local_rank, 1);
  EXPECT_EQ(r.local_size, 4);
}

TEST(LaunchEnv, MalformedVariablesAreOneLineUserErrorsNamingThem) {
  EnvMap env = openmpi(0, 2, 0, 2);
  env["OMPI_COMM_WORLD_SIZE"] = "two";
  EXPECT_NE(user_error_of(env).find("OMPI_COMM_WORLD_SIZE='two'"), std::string::npos) << user_error_of(env);
  env = openmpi(0, 2, 0, 2);
  env.erase("OMPI_COMM_WORLD_LOCAL_RANK");
  EXPECT_NE(user_error_of(env).find("OMPI_COMM_WORLD_LOCAL_RANK is missing"), std::string::npos);
  EXPECT_NE(user_error_of(openmpi(2, 2, 0, 2)).find("rank 2 is not below the world size 2"), std::string::npos);
  EXPECT_NE(user_error_of(openmpi(0, 2, 3, 2)).find("local rank 3"), std::string::npos);
  EnvMap slurm = srun_step(0, 2, 0);
  slurm["SLURM_PROCID"] = "-1";
  EXPECT_NE(user_error_of(slurm).find("SLURM_PROCID"), std::string::npos);
  for (const auto& [k, v] : {std::pair<std::string, std::string>{"SLURM_TASKS_PER_NODE", "2(x"},
                             {"SLURM_TASKS_PER_NODE", "2(x0)"}, {"SLURM_TASKS_PER_NODE", ""}}) {
    EnvMap bad = srun_step(0, 2, 0);
    bad[k] = v;
    EXPECT_NE(user_error_of(bad).find("SLURM_TASKS_PER_NODE"), std::string::npos) << v << ": " << user_error_of(bad);
  }
}

TEST(LaunchEnv, SlurmTasksPerNodeExpandsRepeats) {
  EXPECT_EQ(slurm_tasks_on_node("8", 0), 8);
  EXPECT_EQ(slurm_tasks_on_node("4(x2)", 1), 4);
  EXPECT_EQ(slurm_tasks_on_node("4(x2),3,2(x2)", 2), 3);
  EXPECT_EQ(slurm_tasks_on_node("4(x2),3,2(x2)", 4), 2);
  EXPECT_THROW(slurm_tasks_on_node("4(x2),3", 3), ferry::UserError);
}

TEST(LaunchEnv, ReconcileAcceptsAMatchingLaunchAndFillsSingletons) {
  const LaunchEnv e = reconcile_with_mpi(detect_launch_env(openmpi(1, 2, 1, 2)), MpiPlacement{1, 2, 1, 2});
  EXPECT_EQ(e.rank, 1);
  const LaunchEnv none = reconcile_with_mpi(LaunchEnv{}, MpiPlacement{0, 1, 0, 1});
  EXPECT_EQ(none.world_size, 1);
}

TEST(LaunchEnv, SrunWithoutPmixIsCaughtBecauseMpiSeesSeparateWorlds) {
  const LaunchEnv e = detect_launch_env(srun_step(1, 2, 1));
  try {
    reconcile_with_mpi(e, MpiPlacement{0, 1, 0, 1});
    FAIL() << "a world of 1 under a 2-task srun step was accepted";
  } catch (const ferry::UserError& err) {
    EXPECT_NE(std::string(err.what()).find("srun --mpi=pmix"), std::string::npos) << err.what();
  }
  EXPECT_THROW(reconcile_with_mpi(detect_launch_env(openmpi(1, 2, 1, 2)), MpiPlacement{0, 2, 0, 2}), ferry::UserError);
}

TEST(LaunchEnv, GpuIsLocalRankModuloGpusPerNode) {
  LaunchEnv e;
  e.local_rank = 5;
  EXPECT_EQ(gpu_for_rank(e, 8), 5);
  EXPECT_EQ(gpu_for_rank(e, 4), 1);
  EXPECT_EQ(gpu_for_rank(e, 1), 0);
  EXPECT_EQ(gpu_for_rank(e, 0), -1);
}
