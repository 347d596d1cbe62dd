// parallel/launch_env.h — who started this process, and where it sits in the job.
//
// Read before MPI_Init (the GPU must be chosen before NCCL starts), from the variables each launcher
// exports, first match wins:
//   OpenMPI (mpirun)    OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK, _LOCAL_SIZE
//                        (first, because mpirun inside a Slurm allocation also inherits SLURM_*)
//   Slurm (srun)        SLURM_PROCID, SLURM_STEP_NUM_TASKS (else SLURM_NTASKS), SLURM_LOCALID, and
//                        SLURM_STEP_TASKS_PER_NODE / SLURM_NTASKS_PER_NODE / SLURM_TASKS_PER_NODE
//                        ("2(x3),1", indexed by SLURM_NODEID). Only inside a job step (SLURM_STEP_ID
//                        set): the batch script itself is one process.
//   PMIx (prterun…)     PMIX_RANK; the world size is learnt from MPI once it is up
//   none                rank 0 of 1
// reconcile_with_mpi() then checks the launcher's picture against MPI's.
#pragma once
#include <map>
#include <string>

namespace ferry::parallel {

using EnvMap = std::map<std::string, std::string>;

struct LaunchEnv {
  std::string launcher = "none";  // "openmpi", "slurm", "pmix", "none"
  int rank = 0;
  int world_size = 1;  // 0: not known before MPI starts (PMIx)
  int local_rank = 0;
  int local_size = 1;  // 0: not known (PMIx)
};

// Pure: the variables are passed in (unit tests use a fake map). Throws UserError naming the
// variable when one is present but malformed or inconsistent.
LaunchEnv detect_launch_env(const EnvMap& env);
// The same, from this process's environment.
LaunchEnv detect_launch_env();

// Where MPI puts this process: world rank and size, and rank and size among the ranks sharing its
// node (MPI_Comm_split_type SHARED, keyed by world rank).
struct MpiPlacement {
  int rank = 0;
  int size = 1;
  int local_rank = 0;
  int local_size = 1;
};

// Fills what the launcher did not say from MPI and checks what it did say. A mismatch is a broken
// launch, e.g. `srun` without `--mpi=pmix` starts N separate worlds of one rank each.
LaunchEnv reconcile_with_mpi(LaunchEnv env, const MpiPlacement& mpi);

// The GPU this rank drives: local rank modulo the GPUs per node; -1 when there are none (CPU).
// Use the reconciled LaunchEnv (PMIx does not say the local rank before MPI is up).
int gpu_for_rank(const LaunchEnv& env, int gpus_per_node);

// Parses Slurm's compressed task counts ("2(x3),1" = 2,2,2,1) and returns the count of node `node`.
int slurm_tasks_on_node(const std::string& tasks_per_node, int node);

}  // namespace ferry::parallel
