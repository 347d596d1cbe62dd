// parallel/launch_env.cpp
#include "parallel/launch_env.h"

#include <cerrno>
#include <cstdlib>
#include <vector>

#include "base/error.h"

extern char** environ;

namespace ferry::parallel {
namespace {

const std::string* find(const EnvMap& env, const std::string& name) {
  auto it = env.find(name);
  return it == env.end() ? nullptr : &it->second;
}

int parse_int(const std::string& text, const std::string& what, int min_value) {
  errno = 0;
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || v < min_value || v > 1'000'000'000)
    user_error("launcher variable ", what, "='", text, "' is not an integer >= ", min_value);
  return static_cast<int>(v);
}

int require_int(const EnvMap& env, const std::string& name, int min_value) {
  const std::string* v = find(env, name);
  if (!v) user_error("launcher variable ", name, " is missing (the launcher set some of its variables but not this one)");
  return parse_int(*v, name, min_value);
}

void check_ranks(const LaunchEnv& e, const std::string& source) {
  if (e.world_size > 0 && e.rank >= e.world_size)
    user_error(source, ": rank ", e.rank, " is not below the world size ", e.world_size);
  if (e.local_size > 0 && e.local_rank >= e.local_size)
    user_error(source, ": local rank ", e.local_rank, " is not below the local size ", e.local_size);
}

LaunchEnv from_openmpi(const EnvMap& env) {
  LaunchEnv e;
  e.launcher = "openmpi";
  e.rank = require_int(env, "OMPI_COMM_WORLD_RANK", 0);
  e.world_size = require_int(env, "OMPI_COMM_WORLD_SIZE", 1);
  e.local_rank = require_int(env, "OMPI_COMM_WORLD_LOCAL_RANK", 0);
  e.local_size = require_int(env, "OMPI_COMM_WORLD_LOCAL_SIZE", 1);
  check_ranks(e, "OMPI_COMM_WORLD_*");
  return e;
}

LaunchEnv from_slurm(const EnvMap& env) {
  LaunchEnv e;
  e.launcher = "slurm";
  e.rank = require_int(env, "SLURM_PROCID", 0);
  // The step's own counts first: `srun -n 1` inside a bigger allocation inherits the allocation's
  // SLURM_NTASKS / SLURM_NTASKS_PER_NODE (measured with Slurm 22.05).
  e.world_size = require_int(env, find(env, "SLURM_STEP_NUM_TASKS") ? "SLURM_STEP_NUM_TASKS" : "SLURM_NTASKS", 1);
  e.local_rank = require_int(env, "SLURM_LOCALID", 0);
  const int node = find(env, "SLURM_NODEID") ? require_int(env, "SLURM_NODEID", 0) : 0;
  if (const std::string* step_tasks = find(env, "SLURM_STEP_TASKS_PER_NODE")) {
    e.local_size = slurm_tasks_on_node(*step_tasks, node);
  } else if (const std::string* per_node = find(env, "SLURM_NTASKS_PER_NODE")) {
    e.local_size = parse_int(*per_node, "SLURM_NTASKS_PER_NODE", 1);
  } else if (const std::string* tasks = find(env, "SLURM_TASKS_PER_NODE")) {
    e.local_size = slurm_tasks_on_node(*tasks, node);
  } else {
    e.local_size = 0;
  }
  check_ranks(e, "SLURM_*");
  return e;
}

}  // namespace

int slurm_tasks_on_node(const std::string& tasks_per_node, int node) {
  // Each comma-separated entry is "N" or "N(xM)": N tasks on each of M consecutive nodes.
  std::vector<int> counts;
  size_t pos = 0;
  while (pos <= tasks_per_node.size()) {
    size_t comma = tasks_per_node.find(',', pos);
    if (comma == std::string::npos) comma = tasks_per_node.size();
    const std::string entry = tasks_per_node.substr(pos, comma - pos);
    int repeat = 1;
    std::string count = entry;
    if (const size_t open = entry.find("(x"); open != std::string::npos) {
      if (entry.back() != ')') user_error("SLURM_TASKS_PER_NODE='", tasks_per_node, "' has a malformed entry '", entry, "'");
      count = entry.substr(0, open);
      repeat = parse_int(entry.substr(open + 2, entry.size() - open - 3), "SLURM_TASKS_PER_NODE repeat", 1);
    }
    const int n = parse_int(count, "SLURM_TASKS_PER_NODE", 1);
    for (int i = 0; i < repeat && static_cast<int>(counts.size()) <= node; ++i) counts.push_back(n);
    pos = comma + 1;
  }
  if (node < 0 || node >= static_cast<int>(counts.size()))
    user_error("SLURM_TASKS_PER_NODE='", tasks_per_node, "' lists fewer nodes than SLURM_NODEID=", node);
  return counts[node];
}

LaunchEnv detect_launch_env(const EnvMap& env) {
  if (find(env, "OMPI_COMM_WORLD_RANK")) return from_openmpi(env);
  // Only srun's tasks are ranks: the batch script itself also has SLURM_PROCID=0 and the
  // allocation's SLURM_NTASKS, but no SLURM_STEP_ID.
  if (find(env, "SLURM_PROCID") && (find(env, "SLURM_STEP_ID") || find(env, "SLURM_STEPID"))) return from_slurm(env);
  if (const std::string* r = find(env, "PMIX_RANK")) {
    LaunchEnv e;
    e.launcher = "pmix";
    e.rank = parse_int(*r, "PMIX_RANK", 0);
    e.world_size = 0;
    e.local_rank = 0;
    e.local_size = 0;
    return e;
  }
  return LaunchEnv{};
}

LaunchEnv detect_launch_env() {
  EnvMap env;
  for (char** p = environ; p && *p; ++p) {
    const std::string kv = *p;
    const size_t eq = kv.find('=');
    if (eq == std::string::npos) continue;
    const std::string name = kv.substr(0, eq);
    // Only the families we read: keeps the map small.
    if (name.rfind("OMPI_COMM_WORLD_", 0) == 0 || name.rfind("SLURM_", 0) == 0 || name == "PMIX_RANK")
      env.emplace(name, kv.substr(eq + 1));
  }
  return detect_launch_env(env);
}

LaunchEnv reconcile_with_mpi(LaunchEnv env, const MpiPlacement& mpi) {
  if (env.launcher == "none") {
    // A singleton MPI, or a launcher we do not know: MPI's word is all there is.
    env.rank = mpi.rank;
    env.world_size = mpi.size;
  }
  if (env.world_size == 0) env.world_size = mpi.size;
  if (env.world_size != mpi.size)
    user_error(env.launcher, " started ", env.world_size, " ranks but MPI sees a world of ", mpi.size,
               env.launcher == "slurm" ? " (launch with `srun --mpi=pmix`; Debian's OpenMPI speaks only PMIx)" : "");
  if (env.rank != mpi.rank) user_error(env.launcher, " says this is rank ", env.rank, " but MPI says ", mpi.rank);
  if (env.launcher == "none" || env.launcher == "pmix" || env.local_size == 0) {
    env.local_rank = mpi.local_rank;
    env.local_size = mpi.local_size;
  }
  return env;
}

int gpu_for_rank(const LaunchEnv& env, int gpus_per_node) {
  if (gpus_per_node <= 0) return -1;
  return env.local_rank % gpus_per_node;
}

}  // namespace ferry::parallel
