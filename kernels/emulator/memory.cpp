// kernels/emulator/memory.cpp — every load and store of a running kernel, checked.
//
// The translated kernels are compiled with GCC's ThreadSanitizer *instrumentation* but without its
// runtime: each memory access becomes a call to __tsan_readN/__tsan_writeN (N = 1, 2, 4, 8, 16,
// with the alignment the compiler assumed from the source's types) or __tsan_unaligned_*/
// __tsan_*_range (accesses the source does not promise to align). They land here. Compiled with
// -fno-tree-sra so that a 16-byte Bf16x8/int4/float4 access stays one 16-byte access. An access
// from a running thread is then:
//   - checked for natural alignment (a GPU faults on a misaligned 2/4/8/16-byte access);
//   - if in the block's shared memory: bounds, cp.async in flight, uninitialized bytes, races
//     (another thread wrote it, or read it before this write, with no barrier between — a
//     __syncwarp orders the lanes of one warp), and the bank-conflict count;
//   - if in device memory: inside a live cudaMalloc allocation;
//   - otherwise allowed only on the thread's own stack, in the kernel's parameters, the builtin
//     coordinates or read-only program data (a read).
// Outside a running thread (the host wrappers, the tests) every hook returns at once.
#include <sys/mman.h>

#include <algorithm>
#include <cstdio>

#include "kernels/emulator/internal.h"

namespace ferry::emu::detail {

namespace {

constexpr size_t kHeapReserve = size_t(64) << 30;  // address space only; pages come on first touch

Thread* running() { return state().current; }

std::string shared_where(uint32_t offset) {
  const State& s = state();
  const Launch& L = *s.launch;
  if (offset >= kDynamicSharedOffset && offset < kDynamicSharedOffset + L.dynamic_shared)
    return "shared offset " + hex(offset) + " (dynamic +" + std::to_string(offset - kDynamicSharedOffset) + ")";
  for (const StaticSlot& slot : L.slots)
    if (offset >= slot.offset && offset < slot.offset + slot.bytes)
      return "shared offset " + hex(offset) + " (static array #" + std::to_string(slot.id % 1000) + " +" +
             std::to_string(offset - slot.offset) + ")";
  return "shared offset " + hex(offset);
}

std::string thread_name(uint16_t tid) {
  const State& s = state();
  if (tid >= s.threads.size()) return "thread ?";
  return describe_thread(s.threads[tid]);
}

// GCC calls __tsan_readN/writeN (not the unaligned or range forms) when the type promises
// alignment ≥ min(N, 8): a 16-byte access is "aligned" from 8 bytes on. So the hooks check natural
// alignment up to 8 bytes; 16-byte alignment is checked where the source turns a pointer into a
// 16-byte vector type and dereferences it (aligned_cast, which the translator puts there, and
// __ldcs). Only device and shared memory is checked: a thread's stack and parameters are registers
// on a GPU.
[[noreturn]] void misaligned(const Thread& t, uintptr_t a, size_t bytes, size_t align, bool write, const char* what) {
  fault(FaultKind::Misaligned, describe_thread(t) + (write ? " writes " : " reads ") + std::to_string(bytes) +
                                   " bytes" + what + " at " + describe_address(a) + ", not " + std::to_string(align) +
                                   "-byte aligned");
}

void access(const void* p, size_t bytes, bool write, bool aligned, uintptr_t site) {
  Thread* t = running();
  if (!t) return;
  const auto a = reinterpret_cast<uintptr_t>(p);
  State& s = state();
  const size_t align = aligned ? std::min<size_t>(bytes, 8) : 1;
  const auto base = reinterpret_cast<uintptr_t>(s.shared);
  if (a - base < kSharedWindow) {
    if (a & (align - 1)) misaligned(*t, a, bytes, align, write, "");
    shared_access(*t, uint32_t(a - base), uint32_t(bytes), write, write ? "writes" : "reads", site);
    return;
  }
  if (a >= reinterpret_cast<uintptr_t>(t->stack_lo) && a + bytes <= reinterpret_cast<uintptr_t>(t->stack_hi)) return;
  const Launch& L = *s.launch;
  if (a >= L.frame && a + bytes <= L.frame + L.frame_bytes) {
    if (write) fault(FaultKind::OutOfBounds, describe_thread(*t) + " writes into the launch's parameter space");
    return;
  }
  const auto builtins = reinterpret_cast<uintptr_t>(&g_builtins);
  if (a >= builtins && a + bytes <= builtins + sizeof(g_builtins)) {
    if (write) fault(FaultKind::OutOfBounds, describe_thread(*t) + " writes a builtin coordinate");
    return;
  }
  if (a >= s.heap_begin && a < s.heap_end) {
    if (a & (align - 1)) misaligned(*t, a, bytes, align, write, "");
    check_global(*t, a, bytes, write, write ? "writes" : "reads");
    return;
  }
  if (!write)
    for (const auto& [lo, hi] : s.readonly)
      if (a >= lo && a + bytes <= hi) return;
  fault(FaultKind::OutOfBounds, describe_thread(*t) + (write ? " writes " : " reads ") + std::to_string(bytes) +
                                    " bytes at " + hex(a) +
                                    ": not device memory (a host pointer, another thread's stack, or garbage)");
}

}  // namespace

std::string describe_address(uintptr_t a) {
  const State& s = state();
  const auto base = reinterpret_cast<uintptr_t>(s.shared);
  if (s.launch && a - base < kSharedWindow) return shared_where(uint32_t(a - base));
  if (a >= s.heap_begin && a < s.heap_end) {
    const Allocation* al = find_allocation(a);
    if (al && a < al->begin + al->bytes)
      return hex(a) + " (allocation #" + std::to_string(al->serial) + " of " + std::to_string(al->bytes) +
             " bytes, offset " + std::to_string(a - al->begin) + (al->live ? ")" : ", freed)");
    if (al)
      return hex(a) + " (" + std::to_string(a - al->begin - al->bytes) + " bytes past the end of allocation #" +
             std::to_string(al->serial) + " of " + std::to_string(al->bytes) + " bytes)";
    return hex(a) + " (device heap, no allocation)";
  }
  return hex(a);
}

// ---- device memory ---------------------------------------------------------------------------------

// The allocation with the largest begin ≤ a (it may end before a).
const Allocation* find_allocation(uintptr_t a) {
  State& s = state();
  if (s.allocations.empty()) return nullptr;
  if (s.last_hit < s.allocations.size()) {
    const Allocation& h = s.allocations[s.last_hit];
    if (a >= h.begin && a < h.begin + h.bytes) return &h;
  }
  auto it = std::upper_bound(s.allocations.begin(), s.allocations.end(), a,
                             [](uintptr_t x, const Allocation& al) { return x < al.begin; });
  if (it == s.allocations.begin()) return nullptr;
  --it;
  s.last_hit = size_t(it - s.allocations.begin());
  return &*it;
}

void check_global(Thread& t, uintptr_t a, size_t bytes, bool write, const char* what) {
  if (LaunchRecord* rec = state().launch->record) {
    const int width = bytes == 1 ? 0 : bytes == 2 ? 1 : bytes == 4 ? 2 : bytes == 8 ? 3 : bytes == 16 ? 4 : -1;
    if (width >= 0) (write ? rec->global_stores : rec->global_loads)[width]++;
  }
  if (!write) t.global_loads++;
  const Allocation* al = find_allocation(a);
  if (al && al->live && a + bytes <= al->begin + al->bytes) return;
  fault(FaultKind::OutOfBounds, describe_thread(t) + " " + what + " " + std::to_string(bytes) + " bytes at " +
                                    describe_address(a) +
                                    (al && !al->live ? ": the allocation was freed" : ": outside every live allocation"));
  (void)write;
}

void* device_malloc(size_t bytes) {
  State& s = state();
  if (!s.heap_begin) {
    void* p = mmap(nullptr, kHeapReserve, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    s.heap_begin = s.heap_next = reinterpret_cast<uintptr_t>(p);
    s.heap_end = s.heap_begin + kHeapReserve;
  }
  // 256-byte aligned like cudaMalloc, with at least 256 unallocated bytes after each allocation so
  // that running off the end is caught. Addresses are never reused: a freed allocation stays
  // recognisable.
  const size_t span = (std::max<size_t>(bytes, 1) + 255) / 256 * 256 + 256;
  if (s.heap_next + span > s.heap_end) return nullptr;
  const uintptr_t begin = s.heap_next;
  s.heap_next += span;
  s.allocations.push_back({begin, bytes, true, ++s.allocation_serial});
  s.bytes_in_use += bytes;
  // Fresh device memory holds whatever it held: make it NaN-shaped.
  std::memset(reinterpret_cast<void*>(begin), 0xff, bytes);
  return reinterpret_cast<void*>(begin);
}

bool device_free(void* p) {
  State& s = state();
  const auto a = reinterpret_cast<uintptr_t>(p);
  auto it = std::lower_bound(s.allocations.begin(), s.allocations.end(), a,
                             [](const Allocation& al, uintptr_t x) { return al.begin < x; });
  if (it == s.allocations.end() || it->begin != a || !it->live) return false;
  it->live = false;
  s.bytes_in_use -= it->bytes;
  // Give the pages back (the addresses stay reserved).
  const uintptr_t lo = (it->begin + 4095) & ~uintptr_t(4095), hi = (it->begin + it->bytes) & ~uintptr_t(4095);
  if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
  return true;
}

// Whether [p, p + bytes) lies inside one live allocation.
bool device_range(const void* p, size_t bytes) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  const State& s = state();
  if (a < s.heap_begin || a >= s.heap_end) return false;
  const Allocation* al = find_allocation(a);
  return al && al->live && a + bytes <= al->begin + al->bytes;
}

// ---- shared memory ---------------------------------------------------------------------------------

AccessRecord now(const Thread& t) {
  const State& s = state();
  return AccessRecord{t.tid, s.block_epoch, s.block.warps[t.tid / kWarpSize].epoch};
}

bool ordered(const AccessRecord& r, const Thread& t) {
  if (r.tid == kNoThread || r.tid == t.tid) return true;
  const State& s = state();
  if (r.block_epoch != s.block_epoch) return true;  // a barrier since (epochs only grow)
  if (r.tid / kWarpSize == t.tid / kWarpSize && r.warp_epoch != s.block.warps[t.tid / kWarpSize].epoch)
    return true;  // a __syncwarp of their warp since
  return false;
}

void record_write(ByteShadow& sh, const Thread& t) {
  sh.write = now(t);
  sh.written_in = state().block.generation;
}

void judge_uninitialized_reads() {
  State& s = state();
  for (const UninitializedRead& r : s.block.uninitialized_reads)
    if (s.shadow[r.offset].written_in != s.block.generation) {
      fault_outside(FaultKind::UninitializedShared, thread_name(r.tid) + " reads " + shared_where(r.offset) +
                                                        ", which nothing in this block has written");
      break;
    }
  s.block.uninitialized_reads.clear();
}

bool shared_range_valid(uint32_t offset, size_t bytes) {
  const Launch& L = *state().launch;
  if (offset >= kDynamicSharedOffset && offset + bytes <= kDynamicSharedOffset + L.dynamic_shared) return true;
  for (const StaticSlot& slot : L.slots)
    if (offset >= slot.offset && offset + bytes <= slot.offset + slot.bytes) return true;
  return false;
}

void shared_access(Thread& t, uint32_t offset, uint32_t bytes, bool write, const char* what, uintptr_t site) {
  State& s = state();
  if (!shared_range_valid(offset, bytes))
    fault(FaultKind::OutOfBounds, describe_thread(t) + " " + what + " " + std::to_string(bytes) + " bytes at " +
                                      shared_where(offset) + ", outside the block's " +
                                      std::to_string(s.launch->dynamic_shared) + " bytes of dynamic and " +
                                      std::to_string(s.launch->slots.size()) + " static shared arrays");
  t.interval.push_back({offset, bytes, site});
  if (!s.options.check_shared) return;
  const uint32_t generation = s.block.generation;
  for (uint32_t i = 0; i < bytes; ++i) {
    ByteShadow& sh = s.shadow[offset + i];
    if (sh.pending)
      fault(FaultKind::AsyncCopyInFlight,
            describe_thread(t) + " " + what + " " + shared_where(offset + i) + " while the cp.async of " +
                thread_name(uint16_t(sh.pending - 1)) + " into it has not landed (no cp.async.wait_group covers it yet)");
    if (!write) {
      if (sh.written_in != generation && s.block.uninitialized_reads.size() < 4096)
        s.block.uninitialized_reads.push_back({offset + i, t.tid});
      if (!ordered(sh.write, t))
        fault(FaultKind::SharedRace, describe_thread(t) + " reads " + shared_where(offset + i) + " written by " +
                                         thread_name(sh.write.tid) + " with no barrier in between");
      const AccessRecord r = now(t);
      if (sh.read1.tid == t.tid) {
        sh.read1 = r;
      } else if (sh.read2.tid == t.tid) {
        sh.read2 = sh.read1;
        sh.read1 = r;
      } else {
        sh.read2 = sh.read1;
        sh.read1 = r;
      }
    } else {
      if (!ordered(sh.write, t))
        fault(FaultKind::SharedRace, describe_thread(t) + " writes " + shared_where(offset + i) + " also written by " +
                                         thread_name(sh.write.tid) + " with no barrier in between");
      if (!ordered(sh.read1, t))
        fault(FaultKind::SharedRace, describe_thread(t) + " writes " + shared_where(offset + i) + " read by " +
                                         thread_name(sh.read1.tid) + " with no barrier in between");
      if (!ordered(sh.read2, t))
        fault(FaultKind::SharedRace, describe_thread(t) + " writes " + shared_where(offset + i) + " read by " +
                                         thread_name(sh.read2.tid) + " with no barrier in between");
      record_write(sh, t);
    }
  }
}

// ---- bank conflicts ----------------------------------------------------------------------------------

// Degree of one warp instruction: the lanes' accesses are served in phases (all 32 lanes for
// accesses of ≤ 4 bytes, half-warps for 8, quarter-warps for 16); in each phase a bank serves one
// distinct 4-byte word per cycle.
void count_instruction(const uint32_t* offsets, const uint32_t* sizes, int lanes, const char* file, int line,
                       AccessKind kind) {
  State& s = state();
  LaunchRecord* rec = s.launch ? s.launch->record : nullptr;
  if (!rec || lanes == 0) return;
  uint32_t width = 0;
  for (int l = 0; l < lanes; ++l) width = std::max(width, sizes[l]);
  const int per_phase = width <= 4 ? 32 : width <= 8 ? 16 : 8;
  int degree = 1;
  for (int p0 = 0; p0 < lanes; p0 += per_phase) {
    uint32_t words[32][8];
    int count[32] = {};
    for (int l = p0; l < std::min(lanes, p0 + per_phase); ++l) {
      if (sizes[l] == 0) continue;
      for (uint32_t w = offsets[l] / 4; w <= (offsets[l] + sizes[l] - 1) / 4; ++w) {
        const int bank = int(w % 32);
        bool seen = false;
        for (int k = 0; k < std::min(count[bank], 8); ++k) seen = seen || words[bank][k] == w;
        if (seen) continue;
        if (count[bank] < 8) words[bank][count[bank]] = w;
        count[bank]++;
      }
    }
    for (int b = 0; b < 32; ++b) degree = std::max(degree, count[b]);
  }
  rec->shared_instructions++;
  if (degree > 1) rec->conflicted_instructions++;
  if (kind == AccessKind::Ldmatrix) rec->max_bank_conflict_ldmatrix = std::max(rec->max_bank_conflict_ldmatrix, degree);
  if (kind == AccessKind::CpAsync) rec->max_bank_conflict_cp_async = std::max(rec->max_bank_conflict_cp_async, degree);
  if (degree > rec->max_bank_conflict) {
    rec->max_bank_conflict = degree;
    std::string lanes_text;
    for (int l = 0; l < std::min(lanes, 8); ++l) lanes_text += (l ? " " : "") + std::to_string(offsets[l]);
    rec->worst_access = std::to_string(degree) + "-way, before " + file + ":" + std::to_string(line) +
                        ", first lanes' shared offsets " + lanes_text + " (" + std::to_string(width) + "-byte)";
  }
}

// Groups the accesses of warp `w`'s lanes since its previous synchronization point into warp
// instructions: the j-th execution of one access site by each lane is one instruction (lanes that
// skipped the site in a divergent branch simply do not take part, as under predication).
void close_interval(Warp& w, unsigned first_tid, const char* file, int line) {
  State& s = state();
  struct Group {
    uintptr_t site;
    uint32_t occurrence;
    uint32_t offsets[kWarpSize], sizes[kWarpSize];
  };
  static std::vector<Group> groups;
  static std::vector<std::pair<uintptr_t, uint32_t>> seen;  // per lane: (site, executions so far)
  groups.clear();
  int lanes = 0;
  for (unsigned l = 0; l < kWarpSize; ++l) {
    if (!((w.exists >> l) & 1u)) continue;
    lanes = int(l) + 1;
    seen.clear();
    for (const SharedAccess& a : s.threads[first_tid + l].interval) {
      uint32_t occurrence = 0;
      auto it = std::find_if(seen.begin(), seen.end(), [&](const auto& x) { return x.first == a.site; });
      if (it == seen.end()) {
        seen.push_back({a.site, 1});
      } else {
        occurrence = it->second++;
      }
      auto g = std::find_if(groups.begin(), groups.end(),
                            [&](const Group& x) { return x.site == a.site && x.occurrence == occurrence; });
      if (g == groups.end()) {
        groups.push_back(Group{a.site, occurrence, {}, {}});
        g = groups.end() - 1;
      }
      g->offsets[l] = a.offset;
      g->sizes[l] = a.bytes;
    }
    s.threads[first_tid + l].interval.clear();
  }
  for (const Group& g : groups)
    count_instruction(g.offsets, g.sizes, lanes, file, line,
                      (g.site >> 63) ? AccessKind::CpAsync : AccessKind::Plain);
}

}  // namespace ferry::emu::detail

namespace ferry::emu {

void check_vector_alignment(const void* p, size_t align, size_t bytes, const char* type, const char* file, int line) {
  using namespace detail;
  Thread* t = state().current;
  if (!t) return;
  const auto a = reinterpret_cast<uintptr_t>(p);
  const State& s = state();
  const bool shared = a - reinterpret_cast<uintptr_t>(s.shared) < kSharedWindow;
  const bool device = a >= s.heap_begin && a < s.heap_end;
  if (!(shared || device) || !(a & (align - 1))) return;
  // aligned_cast passes its __PRETTY_FUNCTION__: "… [with P = const Bf16x8*; Q = …]" → "const Bf16x8*".
  std::string name = type;
  const size_t with = name.find("[with P = ");
  if (with != std::string::npos) name = name.substr(with + 10, name.find_first_of(";]", with) - with - 10);
  misaligned(*t, a, bytes, align, false, (" through " + name + " (" + file + ":" + std::to_string(line) + ")").c_str());
}

}  // namespace ferry::emu

// ---- the instrumentation hooks ---------------------------------------------------------------------
using ferry::emu::detail::access;

#define FERRY_EMU_SITE reinterpret_cast<uintptr_t>(__builtin_return_address(0))
#define FERRY_EMU_HOOKS(N)                                                                               \
  extern "C" void __tsan_read##N(void* p) { access(p, N, false, true, FERRY_EMU_SITE); }                \
  extern "C" void __tsan_write##N(void* p) { access(p, N, true, true, FERRY_EMU_SITE); }                \
  extern "C" void __tsan_unaligned_read##N(void* p) { access(p, N, false, false, FERRY_EMU_SITE); }     \
  extern "C" void __tsan_unaligned_write##N(void* p) { access(p, N, true, false, FERRY_EMU_SITE); }     \
  extern "C" void __tsan_volatile_read##N(void* p) { access(p, N, false, true, FERRY_EMU_SITE); }       \
  extern "C" void __tsan_volatile_write##N(void* p) { access(p, N, true, true, FERRY_EMU_SITE); }       \
  extern "C" void __tsan_unaligned_volatile_read##N(void* p) { access(p, N, false, false, FERRY_EMU_SITE); } \
  extern "C" void __tsan_unaligned_volatile_write##N(void* p) { access(p, N, true, false, FERRY_EMU_SITE); }

FERRY_EMU_HOOKS(1)
FERRY_EMU_HOOKS(2)
FERRY_EMU_HOOKS(4)
FERRY_EMU_HOOKS(8)
FERRY_EMU_HOOKS(16)

extern "C" void __tsan_read_range(void* p, unsigned long n) { access(p, n, false, false, FERRY_EMU_SITE); }
extern "C" void __tsan_write_range(void* p, unsigned long n) { access(p, n, true, false, FERRY_EMU_SITE); }
extern "C" void __tsan_init() {}
extern "C" void __tsan_func_entry(void*) {}
extern "C" void __tsan_func_exit() {}
extern "C" void __tsan_vptr_update(void**, void*) {}
extern "C" void __tsan_vptr_read(void**) {}
