// kernels/emulator/internal.h — the emulator runtime's shared state (not for tests: emulator.h is).
//
// One block runs at a time; its threads are fibers (fiber.cpp) switched cooperatively by the
// scheduler (scheduler.cpp) at barriers and warp collectives, in thread order: runs are
// deterministic, and the race detector does not depend on the order it happened to see.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/emulator/device.h"
#include "kernels/emulator/emulator.h"

namespace ferry::emu::detail {

constexpr int kWarpSize = 32;
constexpr size_t kMaxThreadsPerBlock = 1024;
// sm_90: 227 KB of shared memory per block with the opt-in attribute, 48 KB without it.
constexpr size_t kSharedOptInLimit = 232448;
constexpr size_t kDefaultSharedLimit = 48 * 1024;
// Dynamic shared memory starts this far into the window: the 16-byte alignment `extern __shared__
// __align__(16)` promises and no more, so a kernel that assumes more is caught.
constexpr size_t kDynamicSharedOffset = 16;
constexpr size_t kSharedWindow = kDynamicSharedOffset + kSharedOptInLimit + 4096;
constexpr uint16_t kNoThread = 0xffff;

// ---- fibers ----------------------------------------------------------------------------------
struct FiberContext {
  void* sp = nullptr;
};
// Saves the current context in `from` and resumes `to`.
void switch_context(FiberContext& from, const FiberContext& to);
// A context that starts `entry` on the stack [lo, hi).
void make_context(FiberContext& ctx, char* lo, char* hi, void (*entry)());

struct AsyncCopy {
  uint32_t dst;  // shared offset
  uint32_t bytes;
  int group;
  unsigned char data[16];
};

// One shared access of a thread, with the instruction that made it (the instrumented call's return
// address, or the cp.async statement): the bank-conflict count groups the lanes of a warp by it.
struct SharedAccess {
  uint32_t offset;
  uint32_t bytes;
  uintptr_t site;
};

enum class ThreadState : uint8_t { Ready, AtBarrier, AtWarpOp, Done };

struct Thread {
  FiberContext ctx;
  char* stack_lo = nullptr;
  char* stack_hi = nullptr;
  uint16_t tid = 0;  // linear index in the block
  uint3 idx{};
  ThreadState state = ThreadState::Ready;
  const char* wait_file = "";
  int wait_line = 0;
  std::vector<AsyncCopy> copies;  // issued, not landed
  int open_group = 0;             // copies issued now join group `open_group`; older groups are committed
  std::vector<SharedAccess> interval;  // shared accesses since the warp's last synchronization point
  uint64_t global_loads = 0;
};

enum class WarpOp : uint8_t { None, Shuffle, Syncwarp, Ldmatrix, Mma };

struct ShuffleArgs {
  ShuffleKind kind;
  uint64_t bits;
  int arg, width;
  uint64_t result;
};
struct LdmatrixArgs {
  bool trans;
  uint32_t address;
  uint32_t* r[4];
};
struct MmaArgs {
  float* d[4];
  uint32_t a[4], b[2];
};

struct Warp {
  uint32_t epoch = 0;       // advanced by __syncwarp and by every block barrier
  unsigned exists = 0;      // lanes the block has
  unsigned exited = 0;      // lanes whose thread returned
  unsigned arrived = 0;     // lanes waiting at the pending collective
  WarpOp op = WarpOp::None;
  unsigned mask = 0;
  const char* file = "";
  int line = 0;
  void* args[kWarpSize] = {};
};

// Per shared byte: the last write and the last two distinct readers, each with the epochs that
// order it; a cp.async in flight; whether the block has written it at all.
struct AccessRecord {
  uint16_t tid = kNoThread;
  uint32_t block_epoch = 0;
  uint32_t warp_epoch = 0;
};
struct ByteShadow {
  AccessRecord write, read1, read2;
  uint16_t pending = 0;      // 1 + tid of the thread whose cp.async into this byte has not landed
  uint32_t written_in = 0;   // block generation that last wrote it (0: never)
};

struct Allocation {
  uintptr_t begin;
  size_t bytes;
  bool live;
  uint64_t serial;
};

struct StaticSlot {
  int id;
  size_t offset, bytes;
};

struct Launch {
  std::string kernel_text, host_function;
  std::string kernel_full, kernel_short;
  const void* kernel = nullptr;
  dim3 grid, block;
  size_t dynamic_shared = 0;
  size_t static_end = 0;  // end offset of the static slots (after the dynamic region)
  std::vector<StaticSlot> slots;
  void (*body)(const void*) = nullptr;
  uintptr_t frame = 0;
  size_t frame_bytes = 0;
  bool aborted = false;
  bool dry_run_done = false;
  cudaError_t launch_error = cudaSuccess;  // a configuration error (not sticky)
  LaunchRecord* record = nullptr;
};

// A read of a shared byte nothing had written yet: judged at the next barrier (or the block's end)
// — if another thread wrote the byte meanwhile it was a race (reported at that write), else the
// byte was never initialized.
struct UninitializedRead {
  uint32_t offset;
  uint16_t tid;
};

struct Block {
  uint3 idx{};
  std::vector<UninitializedRead> uninitialized_reads;
  unsigned threads = 0;
  unsigned live = 0;
  unsigned at_barrier = 0;
  uint32_t generation = 0;
  std::vector<Warp> warps;
};

struct State {
  // device memory
  uintptr_t heap_begin = 0, heap_end = 0, heap_next = 0;
  std::vector<Allocation> allocations;  // ascending addresses
  size_t last_hit = 0;
  uint64_t allocation_serial = 0;
  size_t bytes_in_use = 0;

  // shared memory of the running block
  unsigned char* shared = nullptr;  // kSharedWindow bytes, 4096-aligned
  std::vector<ByteShadow> shadow;
  uint32_t epoch_counter = 1;   // block epochs and warp epochs come from this one counter
  uint32_t block_epoch = 0;
  uint32_t generation = 0;

  // execution
  Launch* launch = nullptr;
  Block block;
  std::vector<Thread> threads;
  Thread* current = nullptr;
  FiberContext scheduler;
  char* stacks = nullptr;
  size_t stacks_count = 0;

  // read-only ranges of the loaded program (constants a kernel may read)
  std::vector<std::pair<uintptr_t, uintptr_t>> readonly;

  // errors
  Fault fault;
  cudaError_t sticky = cudaSuccess;
  cudaError_t last_error = cudaSuccess;
  std::string last_error_text;

  Options options;
  std::vector<LaunchRecord> records;
  std::vector<std::pair<const void*, int>> max_dynamic_shared;  // cudaFuncSetAttribute
};

State& state();
void initialize();

// Raised inside a running thread: records the fault (or the launch error) and never returns to
// the kernel; the launch ends after the thread's switch back to the scheduler.
[[noreturn]] void fault(FaultKind kind, const std::string& what);
[[noreturn]] void launch_error(cudaError_t code, const std::string& what);
// Raised by the scheduler (no running thread): records the fault and aborts the launch.
void fault_outside(FaultKind kind, const std::string& what);

std::string describe_thread(const Thread& t);
std::string describe_address(uintptr_t a);
std::string hex(uintptr_t a);

// memory.cpp
// Faults (outside a thread) on the first recorded uninitialized read whose byte is still unwritten.
void judge_uninitialized_reads();
void shared_access(Thread& t, uint32_t offset, uint32_t bytes, bool write, const char* what, uintptr_t site);
void check_global(Thread& t, uintptr_t a, size_t bytes, bool write, const char* what);
bool shared_range_valid(uint32_t offset, size_t bytes);
const Allocation* find_allocation(uintptr_t a);
bool ordered(const AccessRecord& r, const Thread& t);
void record_write(ByteShadow& s, const Thread& t);
void close_interval(Warp& w, unsigned first_tid, const char* file, int line);
enum class AccessKind { Plain, CpAsync, Ldmatrix };
void count_instruction(const uint32_t* offsets, const uint32_t* sizes, int lanes, const char* file, int line,
                       AccessKind kind);
// The site recorded for a cp.async statement (tells it apart from plain accesses).
inline uintptr_t cp_async_site(const char* file, int line) {
  return (reinterpret_cast<uintptr_t>(file) * 31 + uintptr_t(line)) | (uintptr_t(1) << 63);
}
AccessRecord now(const Thread& t);

// scheduler.cpp
Warp& warp_of(const Thread& t);
// The calling lane joins its warp's collective; returns once every lane of `mask` has arrived and
// the last one has run `complete`.
void warp_collective(WarpOp op, unsigned mask, void* args, const char* file, int line, void (*complete)(Warp&, unsigned first_tid));

}  // namespace ferry::emu::detail
