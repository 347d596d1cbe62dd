// kernels/emulator/scheduler.cpp — launches, blocks and the cooperative thread scheduler: barriers,
// warp collectives, the kernel prologue (launch-bound and shared-memory checks), faults.
#include <link.h>
#include <sys/mman.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <numeric>
#include <random>

#include "kernels/emulator/internal.h"

namespace ferry::emu {

Builtins g_builtins{};

namespace detail {

namespace {

constexpr size_t kStackBytes = 128 * 1024;
constexpr size_t kGuardBytes = 4096;

int collect_readonly(dl_phdr_info* info, size_t, void* data) {
  auto* out = static_cast<std::vector<std::pair<uintptr_t, uintptr_t>>*>(data);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type == PT_LOAD && !(ph.p_flags & PF_W)) {
      const uintptr_t begin = info->dlpi_addr + ph.p_vaddr;
      out->push_back({begin, begin + ph.p_memsz});
    }
  }
  return 0;
}

void ensure_stacks(size_t n) {
  State& s = state();
  if (s.stacks_count >= n) return;
  if (s.stacks) munmap(s.stacks, s.stacks_count * (kStackBytes + kGuardBytes));
  const size_t bytes = n * (kStackBytes + kGuardBytes);
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    std::fprintf(stderr, "emulator: cannot map %zu bytes of fiber stacks\n", bytes);
    std::abort();
  }
  s.stacks = static_cast<char*>(p);
  s.stacks_count = n;
  // A guard page under each stack: an overflow faults at once instead of corrupting a neighbour.
  for (size_t i = 0; i < n; ++i) mprotect(s.stacks + i * (kStackBytes + kGuardBytes), kGuardBytes, PROT_NONE);
}

std::string short_name(const std::string& pretty) {
  // "void ns::{anonymous}::name(args) [with int HS = 64]" → "name"
  const size_t paren = pretty.find('(');
  std::string head = pretty.substr(0, paren);
  const size_t colon = head.rfind("::");
  if (colon != std::string::npos) head = head.substr(colon + 2);
  const size_t space = head.rfind(' ');
  if (space != std::string::npos) head = head.substr(space + 1);
  return head;
}

std::string full_name(const std::string& pretty) {
  std::string name = short_name(pretty);
  const size_t with = pretty.find(" [with ");
  if (with != std::string::npos) name += pretty.substr(with);
  return name;
}

std::string dims(const dim3& d) {
  return "(" + std::to_string(d.x) + "," + std::to_string(d.y) + "," + std::to_string(d.z) + ")";
}

// Threads ready to run have state Ready; a pass runs each once, in thread order.
void run_thread(Thread& t) {
  State& s = state();
  s.current = &t;
  g_builtins.thread_idx = t.idx;
  switch_context(s.scheduler, t.ctx);
  s.current = nullptr;
}

void thread_main();

void release_barrier() {
  State& s = state();
  Block& b = s.block;
  // Every live thread waits: they must all wait at the same barrier.
  const Thread* first = nullptr;
  for (Thread& t : s.threads) {
    if (t.state != ThreadState::AtBarrier) continue;
    if (!first) {
      first = &t;
    } else if (t.wait_line != first->wait_line || std::strcmp(t.wait_file, first->wait_file) != 0) {
      fault_outside(FaultKind::BarrierDivergence,
                    describe_thread(*first) + " waits at __syncthreads (" + first->wait_file + ":" +
                        std::to_string(first->wait_line) + ") while " + describe_thread(t) + " waits at " +
                        t.wait_file + ":" + std::to_string(t.wait_line));
      return;
    }
  }
  for (Warp& w : b.warps) close_interval(w, unsigned(&w - b.warps.data()) * kWarpSize, first->wait_file, first->wait_line);
  judge_uninitialized_reads();
  if (s.launch->aborted) return;
  s.block_epoch = s.epoch_counter++;
  for (Warp& w : b.warps) w.epoch = s.epoch_counter++;
  for (Thread& t : s.threads)
    if (t.state == ThreadState::AtBarrier) t.state = ThreadState::Ready;
  b.at_barrier = 0;
}

// A lane that exited can never join a pending collective of its warp.
void check_exited_lanes(Warp& w) {
  if (w.arrived == 0 || !(w.mask & w.exited)) return;
  const int lane = __builtin_ctz(w.mask & w.exited);
  State& s = state();
  const unsigned first = unsigned(&w - s.block.warps.data()) * kWarpSize;
  fault_outside(FaultKind::WarpDivergence, "lane " + std::to_string(lane) + " of warp " +
                                               std::to_string(first / kWarpSize) + " exited before the warp collective at " +
                                               w.file + ":" + std::to_string(w.line) + " (mask 0x" +
                                               [&] {
                                                 char buf[16];
                                                 std::snprintf(buf, sizeof buf, "%08x", w.mask);
                                                 return std::string(buf);
                                               }() + ") that " + describe_thread(s.threads[first + __builtin_ctz(w.arrived)]) +
                                               " waits at");
}

void thread_exit(Thread& t) {
  State& s = state();
  if (!t.copies.empty())
    fault(FaultKind::AsyncCopyInFlight, describe_thread(t) + " returns with " + std::to_string(t.copies.size()) +
                                            " cp.async cop" + (t.copies.size() == 1 ? "y" : "ies") +
                                            " never waited for (first into shared offset " +
                                            hex(t.copies.front().dst) + ")");
  t.state = ThreadState::Done;
  if (LaunchRecord* rec = s.launch->record) rec->max_thread_loads = std::max(rec->max_thread_loads, t.global_loads);
  Block& b = s.block;
  b.live--;
  Warp& w = warp_of(t);
  w.exited |= 1u << (t.tid % kWarpSize);
}

void thread_main() {
  State& s = state();
  Thread& t = *s.current;
  s.launch->body(reinterpret_cast<const void*>(s.launch->frame));
  thread_exit(t);
  switch_context(t.ctx, s.scheduler);
  __builtin_unreachable();
}

void run_block(Launch& L, uint3 idx) {
  State& s = state();
  Block& b = s.block;
  const unsigned n = L.block.x * L.block.y * L.block.z;
  b.idx = idx;
  b.threads = n;
  b.live = n;
  b.at_barrier = 0;
  b.uninitialized_reads.clear();
  b.generation = ++s.generation;
  s.block_epoch = s.epoch_counter++;
  b.warps.assign((n + kWarpSize - 1) / kWarpSize, Warp{});
  for (size_t w = 0; w < b.warps.size(); ++w) {
    const unsigned lanes = std::min<unsigned>(kWarpSize, n - unsigned(w) * kWarpSize);
    b.warps[w].exists = lanes == 32 ? 0xffffffffu : ((1u << lanes) - 1);
    b.warps[w].epoch = s.epoch_counter++;
  }
  g_builtins.block_idx = idx;
  // Copies a faulted block left in flight must not haunt this one.
  for (Thread& t : s.threads)
    for (const AsyncCopy& c : t.copies)
      for (uint32_t i = 0; i < c.bytes; ++i) s.shadow[c.dst + i].pending = 0;
  ensure_stacks(n);
  if (s.threads.size() < n) s.threads.resize(n);
  for (unsigned i = 0; i < n; ++i) {
    Thread& t = s.threads[i];
    t.tid = uint16_t(i);
    t.idx = uint3{i % L.block.x, (i / L.block.x) % L.block.y, i / (L.block.x * L.block.y)};
    t.state = ThreadState::Ready;
    t.copies.clear();
    t.open_group = 0;
    t.interval.clear();
    t.global_loads = 0;
    t.stack_lo = s.stacks + i * (kStackBytes + kGuardBytes) + kGuardBytes;
    t.stack_hi = t.stack_lo + kStackBytes;
    make_context(t.ctx, t.stack_lo, t.stack_hi, thread_main);
  }
  // The block's shared memory starts undefined: poison what this launch may use.
  const size_t used = std::max(L.static_end, kDynamicSharedOffset + L.dynamic_shared);
  std::memset(s.shared, 0xff, std::min(used, kSharedWindow));

  while (true) {
    bool ran = false;
    for (unsigned i = 0; i < n && !L.aborted; ++i) {
      Thread& t = s.threads[i];
      if (t.state != ThreadState::Ready) continue;
      run_thread(t);
      ran = true;
      if (L.aborted) break;
      // An exit can complete a barrier the others wait at, or strand a warp collective.
      if (t.state == ThreadState::Done) {
        check_exited_lanes(warp_of(t));
        if (L.aborted) break;
        if (b.live > 0 && b.at_barrier == b.live) release_barrier();
      }
    }
    if (L.aborted || L.dry_run_done) return;
    if (b.live == 0) break;
    if (!ran) {
      std::string waits;
      for (unsigned i = 0; i < n && waits.size() < 400; ++i) {
        const Thread& t = s.threads[i];
        if (t.state == ThreadState::AtBarrier || t.state == ThreadState::AtWarpOp)
          waits += " " + describe_thread(t) + (t.state == ThreadState::AtBarrier ? " at __syncthreads " : " at a warp op ") +
                   t.wait_file + ":" + std::to_string(t.wait_line) + ";";
      }
      fault_outside(FaultKind::Deadlock, "no thread can proceed (" + std::to_string(b.live) + " live):" + waits);
      return;
    }
  }
  for (size_t w = 0; w < b.warps.size(); ++w) close_interval(b.warps[w], unsigned(w) * kWarpSize, "block end", 0);
  judge_uninitialized_reads();
}

std::vector<uint3> block_order(const Launch& L) {
  std::vector<uint3> order;
  order.reserve(size_t(L.grid.x) * L.grid.y * L.grid.z);
  const Options& o = state().options;
  const unsigned grid[3] = {L.grid.x, L.grid.y, L.grid.z};
  for (unsigned z = 0; z < L.grid.z; ++z)
    for (unsigned y = 0; y < L.grid.y; ++y)
      for (unsigned x = 0; x < L.grid.x; ++x) {
        const unsigned block[3] = {x, y, z};
        if (!o.run_block || o.run_block(block, grid)) order.push_back(uint3{x, y, z});
      }
  if (o.block_order == BlockOrder::Reverse) std::reverse(order.begin(), order.end());
  if (o.block_order == BlockOrder::Shuffled) {
    std::mt19937_64 rng(o.shuffle_seed);
    std::shuffle(order.begin(), order.end(), rng);
  }
  return order;
}

bool valid_config(Launch& L) {
  const dim3 g = L.grid, b = L.block;
  const uint64_t threads = uint64_t(b.x) * b.y * b.z;
  std::string why;
  if (g.x == 0 || g.y == 0 || g.z == 0 || threads == 0)
    why = "an empty grid or block";
  else if (g.x > 2147483647u || g.y > 65535 || g.z > 65535)
    why = "grid " + dims(g) + " exceeds (2^31-1, 65535, 65535)";
  else if (b.x > 1024 || b.y > 1024 || b.z > 64 || threads > kMaxThreadsPerBlock)
    why = "block " + dims(b) + " exceeds 1024 threads (x, y ≤ 1024, z ≤ 64)";
  else if (L.dynamic_shared > kSharedOptInLimit)
    why = std::to_string(L.dynamic_shared) + " bytes of dynamic shared memory exceed the 227 KB of a block";
  if (why.empty()) return true;
  L.launch_error = cudaErrorInvalidConfiguration;
  State& s = state();
  s.last_error = cudaErrorInvalidConfiguration;
  s.last_error_text = "cudaErrorInvalidConfiguration: launch of " + L.kernel_text + " (from " + L.host_function +
                      "): " + why;
  return false;
}

}  // namespace

State& state() {
  static State s;
  return s;
}

void initialize() {
  State& s = state();
  if (s.shared) return;
  void* p = mmap(nullptr, kSharedWindow, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) std::abort();
  s.shared = static_cast<unsigned char*>(p);
  s.shadow.assign(kSharedWindow, ByteShadow{});
  dl_iterate_phdr(collect_readonly, &s.readonly);
}

std::string hex(uintptr_t a) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%" PRIxPTR, a);
  return buf;
}

std::string describe_thread(const Thread& t) {
  const State& s = state();
  return "block " + dims(dim3(s.block.idx.x, s.block.idx.y, s.block.idx.z)) + " thread " +
         dims(dim3(t.idx.x, t.idx.y, t.idx.z)) + " (warp " + std::to_string(t.tid / kWarpSize) + " lane " +
         std::to_string(t.tid % kWarpSize) + ")";
}

namespace {
void record_fault(FaultKind kind, const std::string& what) {
  State& s = state();
  Launch* L = s.launch;
  if (s.fault.kind == FaultKind::None) {
    s.fault.kind = kind;
    s.fault.kernel = L ? (L->kernel_full.empty() ? L->kernel_text : L->kernel_full) : "";
    s.fault.message = std::string(fault_kind_name(kind)) + " in " + s.fault.kernel + ": " + what;
    s.sticky = kind == FaultKind::Misaligned ? cudaErrorMisalignedAddress
               : kind == FaultKind::OutOfBounds ? cudaErrorIllegalAddress
                                                : cudaErrorLaunchFailure;
  }
  if (L) {
    L->aborted = true;
    if (L->record) L->record->faulted = true;
  }
}
}  // namespace

void fault(FaultKind kind, const std::string& what) {
  State& s = state();
  record_fault(kind, what);
  Thread* t = s.current;
  if (!t) std::abort();  // a fault outside a thread is a bug of the emulator
  t->state = ThreadState::Done;
  switch_context(t->ctx, s.scheduler);
  __builtin_unreachable();
}

void fault_outside(FaultKind kind, const std::string& what) { record_fault(kind, what); }

void launch_error(cudaError_t code, const std::string& what) {
  State& s = state();
  Launch* L = s.launch;
  L->aborted = true;
  L->launch_error = code;
  s.last_error = code;
  s.last_error_text = std::string(cudaGetErrorName(code)) + ": launch of " + L->kernel_full + " (from " +
                      L->host_function + "): " + what;
  if (L->record) L->record->faulted = true;
  Thread* t = s.current;
  t->state = ThreadState::Done;
  switch_context(t->ctx, s.scheduler);
  __builtin_unreachable();
}

Warp& warp_of(const Thread& t) { return state().block.warps[t.tid / kWarpSize]; }

void warp_collective(WarpOp op, unsigned mask, void* args, const char* file, int line,
                     void (*complete)(Warp&, unsigned first_tid)) {
  State& s = state();
  Thread& t = *s.current;
  Warp& w = warp_of(t);
  const unsigned lane = t.tid % kWarpSize, bit = 1u << lane;
  const unsigned first = t.tid - lane;
  if (!(mask & bit))
    fault(FaultKind::WarpDivergence, describe_thread(t) + " calls a warp collective at " + file + ":" +
                                         std::to_string(line) + " with a mask that leaves it out");
  if (mask & ~w.exists)
    fault(FaultKind::WarpDivergence, describe_thread(t) + ": the mask of the warp collective at " + file + ":" +
                                         std::to_string(line) + " names lanes the block does not have");
  if (w.arrived == 0) {
    w.op = op;
    w.mask = mask;
    w.file = file;
    w.line = line;
  } else if (w.op != op || w.mask != mask) {
    fault(FaultKind::WarpDivergence, describe_thread(t) + " reaches a warp collective at " + file + ":" +
                                         std::to_string(line) + " while lanes of its warp wait at " + w.file + ":" +
                                         std::to_string(w.line));
  }
  w.args[lane] = args;
  w.arrived |= bit;
  if (w.arrived == w.mask) {
    // The last lane in: every lane's shared accesses since the previous collective form one
    // interval for the bank-conflict count; then the collective itself.
    close_interval(w, first, file, line);
    complete(w, first);
    w.arrived = 0;
    w.op = WarpOp::None;
    for (unsigned l = 0; l < kWarpSize; ++l)
      if ((mask >> l) & 1u) {
        Thread& other = s.threads[first + l];
        if (&other != &t) other.state = ThreadState::Ready;
      }
    return;
  }
  if (mask & w.exited) check_exited_lanes(w);
  if (s.launch->aborted) fault(FaultKind::WarpDivergence, "(see the first fault)");
  t.state = ThreadState::AtWarpOp;
  t.wait_file = file;
  t.wait_line = line;
  switch_context(t.ctx, s.scheduler);
  g_builtins.thread_idx = t.idx;
}

void launch(const char* kernel_text, const char* host_function, const LaunchConfig& config,
            void (*body)(const void*), const void* frame, size_t frame_bytes) {
  initialize();
  State& s = state();
  Launch L;
  L.kernel_text = kernel_text;
  L.host_function = host_function;
  L.kernel_full = kernel_text;
  L.kernel_short = kernel_text;
  L.grid = config.grid;
  L.block = config.block;
  L.dynamic_shared = config.dynamic_shared;
  L.static_end = (kDynamicSharedOffset + config.dynamic_shared + 15) & ~size_t(15);
  L.body = body;
  L.frame = reinterpret_cast<uintptr_t>(frame);
  L.frame_bytes = frame_bytes;
  if (s.sticky != cudaSuccess) return;  // a faulted context runs nothing more, as on a GPU
  if (!valid_config(L)) return;
  s.records.push_back(LaunchRecord{});
  LaunchRecord& rec = s.records.back();
  rec.kernel = kernel_text;
  rec.kernel_full = kernel_text;
  rec.grid[0] = L.grid.x, rec.grid[1] = L.grid.y, rec.grid[2] = L.grid.z;
  rec.block[0] = L.block.x, rec.block[1] = L.block.y, rec.block[2] = L.block.z;
  rec.dynamic_shared = L.dynamic_shared;
  L.record = &rec;
  s.launch = &L;
  g_builtins.grid_dim = L.grid;
  g_builtins.block_dim = L.block;
  if (s.options.dry_run) {
    // One thread of the first block runs the kernel prologue (launch bounds, shared-memory
    // limits) and stops there.
    run_block(L, uint3{0, 0, 0});
  } else {
    for (const uint3& b : block_order(L)) {
      run_block(L, b);
      rec.blocks_run++;
      if (L.aborted) break;
    }
  }
  rec.kernel = L.kernel_short;
  rec.kernel_full = L.kernel_full;
  rec.static_shared = L.static_end - ((kDynamicSharedOffset + L.dynamic_shared + 15) & ~size_t(15));
  s.launch = nullptr;
  // The records vector may have grown: rec stays valid because nothing was pushed meanwhile.
}

}  // namespace detail

// ---- device-side entry points --------------------------------------------------------------------
using namespace detail;

void launch(const char* kernel_text, const char* host_function, const LaunchConfig& config,
            void (*body)(const void*), const void* frame, size_t frame_bytes) {
  detail::launch(kernel_text, host_function, config, body, frame, frame_bytes);
}

void kernel_entry(const char* pretty_function, const void* kernel, unsigned max_threads) {
  State& s = state();
  Launch& L = *s.launch;
  if (L.kernel == kernel) return;
  if (L.kernel) std::abort();  // one launch runs one kernel
  L.kernel = kernel;
  L.kernel_full = full_name(pretty_function);
  L.kernel_short = short_name(pretty_function);
  if (L.record) {
    L.record->kernel = L.kernel_short;
    L.record->kernel_full = L.kernel_full;
  }
  const unsigned threads = L.block.x * L.block.y * L.block.z;
  if (max_threads > 0 && threads > max_threads)
    launch_error(cudaErrorLaunchOutOfResources, "block of " + std::to_string(threads) +
                                                    " threads exceeds the kernel's __launch_bounds__(" +
                                                    std::to_string(max_threads) + ")");
  int limit = int(kDefaultSharedLimit);
  for (const auto& [k, bytes] : s.max_dynamic_shared)
    if (k == kernel) limit = bytes;
  if (L.dynamic_shared > size_t(limit))
    launch_error(cudaErrorInvalidValue,
                 std::to_string(L.dynamic_shared) + " bytes of dynamic shared memory exceed the kernel's limit of " +
                     std::to_string(limit) +
                     (limit == int(kDefaultSharedLimit) ? " (48 KB without cudaFuncAttributeMaxDynamicSharedMemorySize)"
                                                        : " (cudaFuncSetAttribute)"));
  if (s.options.dry_run) {
    L.dry_run_done = true;
    L.aborted = true;
    Thread* t = s.current;
    t->state = ThreadState::Done;
    switch_context(t->ctx, s.scheduler);
  }
}

void* static_shared(int id, size_t bytes, size_t align) {
  State& s = state();
  Launch& L = *s.launch;
  for (const StaticSlot& slot : L.slots)
    if (slot.id == id) return s.shared + slot.offset;
  align = std::max<size_t>(align, 1);
  const size_t offset = (L.static_end + align - 1) / align * align;
  L.slots.push_back({id, offset, bytes});
  L.static_end = offset + bytes;
  if (L.static_end - kDynamicSharedOffset > kSharedOptInLimit)
    launch_error(cudaErrorInvalidValue, "static and dynamic shared memory exceed the 227 KB of a block");
  return s.shared + offset;
}

void* dynamic_shared() { return state().shared + kDynamicSharedOffset; }

size_t shared_address(const void* p, const char* file, int line) {
  State& s = state();
  const auto a = reinterpret_cast<uintptr_t>(p), base = reinterpret_cast<uintptr_t>(s.shared);
  if (a < base || a >= base + kSharedWindow)
    fault(FaultKind::OutOfBounds, describe_thread(*s.current) + " converts " + hex(a) +
                                      ", not a shared-memory address, with __cvta_generic_to_shared at " + file + ":" +
                                      std::to_string(line));
  return a - base;
}

void syncthreads(const char* file, int line) {
  State& s = state();
  Thread& t = *s.current;
  Block& b = s.block;
  t.state = ThreadState::AtBarrier;
  t.wait_file = file;
  t.wait_line = line;
  b.at_barrier++;
  if (b.at_barrier == b.live) {
    release_barrier();
    if (s.launch->aborted) fault(FaultKind::BarrierDivergence, "(see the first fault)");
    return;
  }
  switch_context(t.ctx, s.scheduler);
  g_builtins.thread_idx = t.idx;
}

namespace {
void complete_syncwarp(Warp& w, unsigned) {
  w.epoch = state().epoch_counter++;
}
void complete_shuffle(Warp& w, unsigned first) {
  State& s = state();
  for (unsigned l = 0; l < kWarpSize; ++l) {
    if (!((w.mask >> l) & 1u)) continue;
    auto* a = static_cast<ShuffleArgs*>(w.args[l]);
    const int width = a->width;
    const int base = int(l) & ~(width - 1);
    int src = int(l);
    switch (a->kind) {
      case ShuffleKind::Xor: src = base | ((int(l) ^ a->arg) & (width - 1)); break;
      case ShuffleKind::Down: src = (int(l) - base) + a->arg < width ? int(l) + a->arg : int(l); break;
      case ShuffleKind::Up: src = int(l) - base >= a->arg ? int(l) - a->arg : int(l); break;
      case ShuffleKind::Index: src = base + (a->arg & (width - 1)); break;
    }
    if (!((w.mask >> src) & 1u)) {
      fault_outside(FaultKind::WarpDivergence, describe_thread(s.threads[first + l]) + " shuffles from lane " +
                                                   std::to_string(src) + ", outside the mask, at " + w.file + ":" +
                                                   std::to_string(w.line));
      return;
    }
    a->result = static_cast<ShuffleArgs*>(w.args[src])->bits;
  }
}
}  // namespace

void syncwarp(unsigned mask, const char* file, int line) {
  warp_collective(WarpOp::Syncwarp, mask, nullptr, file, line, complete_syncwarp);
}

uint64_t shuffle(ShuffleKind kind, unsigned mask, uint64_t bits, int arg, int width, const char* file, int line) {
  if (width <= 0 || width > kWarpSize || (width & (width - 1)))
    fault(FaultKind::Unsupported, "shuffle width " + std::to_string(width) + " at " + file + ":" + std::to_string(line));
  ShuffleArgs a{kind, bits, arg, width, 0};
  warp_collective(WarpOp::Shuffle, mask, &a, file, line, complete_shuffle);
  if (state().launch->aborted) fault(FaultKind::WarpDivergence, "(see the first fault)");
  return a.result;
}

// ---- test-facing API -------------------------------------------------------------------------------
const char* fault_kind_name(FaultKind kind) {
  switch (kind) {
    case FaultKind::None: return "no fault";
    case FaultKind::Misaligned: return "misaligned access";
    case FaultKind::OutOfBounds: return "out-of-bounds access";
    case FaultKind::SharedRace: return "shared-memory race";
    case FaultKind::AsyncCopyInFlight: return "cp.async in flight";
    case FaultKind::UninitializedShared: return "uninitialized shared read";
    case FaultKind::BarrierDivergence: return "barrier divergence";
    case FaultKind::WarpDivergence: return "warp divergence";
    case FaultKind::Deadlock: return "deadlock";
    case FaultKind::LaunchConfig: return "launch configuration";
    case FaultKind::Unsupported: return "unsupported instruction";
  }
  return "?";
}

const Fault& last_fault() { return state().fault; }

Options& options() { return state().options; }

const std::vector<LaunchRecord>& launches() { return state().records; }

std::vector<LaunchRecord> launches_of(const std::string& kernel) {
  std::vector<LaunchRecord> r;
  for (const LaunchRecord& rec : state().records)
    if (rec.kernel == kernel) r.push_back(rec);
  return r;
}

void reset() {
  State& s = state();
  s.fault = Fault{};
  s.sticky = cudaSuccess;
  s.last_error = cudaSuccess;
  s.last_error_text.clear();
  s.records.clear();
  s.options = Options{};
}

size_t device_bytes_in_use() { return state().bytes_in_use; }

}  // namespace ferry::emu
