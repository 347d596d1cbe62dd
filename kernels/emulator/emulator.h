// kernels/emulator/emulator.h — what a test sees of the CUDA emulator: the faults it raises, the
// options that steer it (block order, dry runs, a subset of blocks) and what it counted per launch
// (shared-memory bank conflicts). The emulator itself is described in docs/ARCHITECTURE.md
// ("The CUDA emulator"); kernels run on it through their real host wrappers, which call the
// emulated CUDA runtime (cuda_runtime.cpp) instead of libcudart.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ferry::emu {

enum class FaultKind {
  None,
  Misaligned,          // a 2/4/8/16-byte access, cp.async or ldmatrix row not aligned to its size
  OutOfBounds,         // outside every live device allocation, past the block's shared memory, …
  SharedRace,          // two threads touch a shared byte (one writes) with no barrier in between
  AsyncCopyInFlight,   // a shared byte read or written while a cp.async into it has not landed
  UninitializedShared, // a shared byte read before anything in the block wrote it
  BarrierDivergence,   // threads of a block wait at different __syncthreads
  WarpDivergence,      // a warp collective whose lanes disagree, or that an exited lane misses
  Deadlock,            // no thread can make progress
  LaunchConfig,        // grid/block/shared-memory sizes a real launch would refuse
  Unsupported,         // an instruction form the emulator does not model
};

const char* fault_kind_name(FaultKind kind);

struct Fault {
  FaultKind kind = FaultKind::None;
  std::string kernel;   // e.g. "attention_forward_kernel [with int HS = 64]"
  std::string message;  // one line: kernel, block, thread, address and what was wrong
};

// The first fault of the current run (sticky, like a CUDA context after an illegal address, until
// reset()); kind None when nothing went wrong.
const Fault& last_fault();

enum class BlockOrder { Linear, Reverse, Shuffled };

struct Options {
  BlockOrder block_order = BlockOrder::Linear;
  uint64_t shuffle_seed = 1;
  // Launches are validated (grid, block, shared memory, launch bounds) but no block runs.
  bool dry_run = false;
  // Off: shared memory is only modelled (cp.async bytes land at their wait, barriers order
  // nothing), not checked for races, in-flight or uninitialized reads — to show what a bug does
  // to the numbers. Alignment and bounds are always checked.
  bool check_shared = true;
  // When set, only the blocks it accepts run (e.g. the first and last of a huge grid); it gets the
  // block's index and the grid's size, x, y, z each.
  std::function<bool(const unsigned block[3], const unsigned grid[3])> run_block;
};
Options& options();

// What one launch did, in launch order since the last reset().
struct LaunchRecord {
  std::string kernel;        // short name, e.g. "layernorm_backward_kernel"
  std::string kernel_full;   // with template arguments
  unsigned grid[3] = {0, 0, 0}, block[3] = {0, 0, 0};
  size_t dynamic_shared = 0, static_shared = 0;
  uint64_t blocks_run = 0;
  // Shared-memory bank conflicts: between two of a warp's synchronization points, the j-th
  // execution of one access site (one load or store of the kernel) by each lane of the warp counts
  // as one instruction (a lane that skipped the site does not take part); its degree is the largest number of
  // distinct 4-byte words one bank serves in one phase (a 16-byte access has four phases of eight
  // lanes, an 8-byte access two of sixteen). ldmatrix counts one instruction per 8×8 matrix.
  // The grouping is exact for code every lane runs alike; in divergent code (a load only some
  // lanes reach, in an unrolled loop) lanes' executions can pair up differently than the hardware's
  // predicated instruction would, and nvcc may hoist such a load anyway: there, read the count as a
  // hint. ldmatrix (a warp collective) and cp.async tile loads are counted apart.
  uint64_t shared_instructions = 0, conflicted_instructions = 0;
  int max_bank_conflict = 0;             // over every shared access
  int max_bank_conflict_ldmatrix = 0;    // ldmatrix rows
  int max_bank_conflict_cp_async = 0;    // cp.async destinations
  std::string worst_access;  // where the worst degree was seen (file:line of the nearest sync, lane addresses)
  // Device-memory accesses by width: [0] 1 byte, [1] 2, [2] 4, [3] 8, [4] 16 (cp.async sources too).
  uint64_t global_loads[5] = {0, 0, 0, 0, 0}, global_stores[5] = {0, 0, 0, 0, 0};
  // The most device-memory loads one thread made: a proxy for the longest serial chain (a thread
  // that sums a long run of rows one after the other).
  uint64_t max_thread_loads = 0;
  bool faulted = false;
};
const std::vector<LaunchRecord>& launches();
// The records of one kernel (short name), in order.
std::vector<LaunchRecord> launches_of(const std::string& kernel);

// Clears the sticky fault, the launch records and the options; frees nothing (allocations stay).
void reset();

// Bytes of device memory currently allocated through the emulated cudaMalloc.
size_t device_bytes_in_use();

}  // namespace ferry::emu
