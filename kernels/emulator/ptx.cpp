// kernels/emulator/ptx.cpp — the PTX instructions ferry's kernels issue through inline asm.
//
// mma.sync.m16n8k16 (bf16 in, fp32 accumulate) and ldmatrix.x4[.trans] are warp collectives with
// the fragment layouts of the PTX ISA ("Matrix Fragments for mma.m16n8k16", "ldmatrix"). If that
// reading of the ISA were wrong, kernel and emulator would agree on the same wrong layout: the
// emulator proves indexing, masking, synchronization and alignment; the gpu tests stay the judge
// of the layouts themselves.
//
// cp.async is modelled as the ISA defines it, not as a copy: the source is read at issue, the
// bytes land in shared memory only when the issuing thread's cp.async.wait_group retires their
// group (wait_group N lands every committed group but the newest N), and until then any access to
// them — by any thread, the issuer included — is a fault. So is a second copy into bytes still in
// flight, a copy into bytes another thread touched since the last barrier, and a thread that
// returns with copies in flight. A wrong wait count therefore faults (and, were it not caught,
// would read stale bytes).
#include <algorithm>
#include <cstdio>

#include "kernels/emulator/internal.h"

namespace ferry::emu::ptx {

using namespace ferry::emu::detail;

namespace {

float bf16_lo(uint32_t r) {
  const uint32_t u = r << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
float bf16_hi(uint32_t r) {
  const uint32_t u = r & 0xffff0000u;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

std::string where(const char* file, int line) { return std::string(file) + ":" + std::to_string(line); }

[[noreturn]] void unsupported(const char* text, const char* file, int line) {
  std::string t = text;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  fault(FaultKind::Unsupported, "the emulator does not model \"" + t + "\" (" + where(file, line) + ")");
}

// g = lane / 4, t = lane % 4.
//   A 16×16 (row): r0 = A[g][2t, 2t+1], r1 = A[g+8][2t, 2t+1], r2 = A[g][2t+8, 2t+9], r3 = A[g+8][2t+8, 2t+9]
//   B 16×8  (col): r0 = B[2t, 2t+1][g], r1 = B[2t+8, 2t+9][g]
//   C, D 16×8 fp32: d0, d1 = C[g][2t, 2t+1], d2, d3 = C[g+8][2t, 2t+1]
// (the first element of a pair in the low 16 bits).
void complete_mma(Warp& w, unsigned) {
  float A[16][16], B[16][8];
  for (int l = 0; l < kWarpSize; ++l) {
    const auto* m = static_cast<const MmaArgs*>(w.args[l]);
    const int g = l / 4, t = l % 4;
    A[g][2 * t] = bf16_lo(m->a[0]), A[g][2 * t + 1] = bf16_hi(m->a[0]);
    A[g + 8][2 * t] = bf16_lo(m->a[1]), A[g + 8][2 * t + 1] = bf16_hi(m->a[1]);
    A[g][2 * t + 8] = bf16_lo(m->a[2]), A[g][2 * t + 9] = bf16_hi(m->a[2]);
    A[g + 8][2 * t + 8] = bf16_lo(m->a[3]), A[g + 8][2 * t + 9] = bf16_hi(m->a[3]);
    B[2 * t][g] = bf16_lo(m->b[0]), B[2 * t + 1][g] = bf16_hi(m->b[0]);
    B[2 * t + 8][g] = bf16_lo(m->b[1]), B[2 * t + 9][g] = bf16_hi(m->b[1]);
  }
  for (int l = 0; l < kWarpSize; ++l) {
    auto* m = static_cast<MmaArgs*>(w.args[l]);
    const int g = l / 4, t = l % 4;
    for (int i = 0; i < 4; ++i) {
      const int row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
      // bf16 × bf16 products are exact in fp32; the sum is fp32 in k order (the hardware's order
      // is unspecified, so tests compare with tolerances, never bits, across devices).
      float sum = 0.0f;
      for (int k = 0; k < 16; ++k) sum += A[row][k] * B[k][col];
      *m->d[i] += sum;
    }
  }
}

// x4: lanes 8j..8j+7 give the row addresses of matrix j (8 rows of 8 b16 = 16 bytes each, 16-byte
// aligned). Lane (g, t) receives for matrix j the pair (M_j[g][2t], M_j[g][2t+1]) in r[j], or with
// .trans (M_j[2t][g], M_j[2t+1][g]).
void complete_ldmatrix(Warp& w, unsigned first) {
  State& s = state();
  const char* file = w.file;
  const int line = w.line;
  for (int l = 0; l < kWarpSize; ++l) {
    const auto* a = static_cast<const LdmatrixArgs*>(w.args[l]);
    Thread& t = s.threads[first + l];
    if (a->address % 16)
      fault(FaultKind::Misaligned, describe_thread(t) + " gives ldmatrix (" + where(file, line) + ") the row address " +
                                       hex(a->address) + " (shared), not 16-byte aligned");
    if (!shared_range_valid(a->address, 16))
      fault(FaultKind::OutOfBounds, describe_thread(t) + " gives ldmatrix (" + where(file, line) + ") the row address " +
                                        hex(a->address) + ", outside the block's shared memory");
    shared_access(t, a->address, 16, false, "reads (ldmatrix row)", 0);
    t.interval.pop_back();  // counted per matrix below, not as an access of the interval
  }
  for (int j = 0; j < 4; ++j) {
    uint32_t offsets[8], sizes[8];
    for (int i = 0; i < 8; ++i) {
      offsets[i] = static_cast<const LdmatrixArgs*>(w.args[8 * j + i])->address;
      sizes[i] = 16;
    }
    count_instruction(offsets, sizes, 8, file, line, AccessKind::Ldmatrix);
  }
  const bool trans = static_cast<const LdmatrixArgs*>(w.args[0])->trans;
  for (int l = 0; l < kWarpSize; ++l) {
    auto* a = static_cast<LdmatrixArgs*>(w.args[l]);
    const int g = l / 4, t = l % 4;
    for (int j = 0; j < 4; ++j) {
      uint16_t lo, hi;
      auto row = [&](int r) { return s.shared + static_cast<const LdmatrixArgs*>(w.args[8 * j + r])->address; };
      if (trans) {
        std::memcpy(&lo, row(2 * t) + 2 * g, 2);
        std::memcpy(&hi, row(2 * t + 1) + 2 * g, 2);
      } else {
        std::memcpy(&lo, row(g) + 2 * (2 * t), 2);
        std::memcpy(&hi, row(g) + 2 * (2 * t + 1), 2);
      }
      *a->r[j] = uint32_t(lo) | (uint32_t(hi) << 16);
    }
  }
}

void land(Thread& t, const AsyncCopy& c) {
  State& s = state();
  std::memcpy(s.shared + c.dst, c.data, c.bytes);
  for (uint32_t i = 0; i < c.bytes; ++i) {
    ByteShadow& sh = s.shadow[c.dst + i];
    sh.pending = 0;
    record_write(sh, t);
  }
}

}  // namespace

void mma_m16n8k16_bf16(const char* text, float* d[4], const uint32_t a[4], const uint32_t b[2], const char* file,
                       int line) {
  if (std::strncmp(text, "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 ", 52) != 0)
    unsupported(text, file, line);
  MmaArgs args{{d[0], d[1], d[2], d[3]}, {a[0], a[1], a[2], a[3]}, {b[0], b[1]}};
  warp_collective(WarpOp::Mma, 0xffffffffu, &args, file, line, complete_mma);
  if (state().launch->aborted) fault(FaultKind::WarpDivergence, "(see the first fault)");
}

void ldmatrix_x4(const char* text, bool trans, uint32_t* r[4], uint32_t address, const char* file, int line) {
  const char* expected = trans ? "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 " : "ldmatrix.sync.aligned.m8n8.x4.shared.b16 ";
  if (std::strncmp(text, expected, std::strlen(expected)) != 0) unsupported(text, file, line);
  LdmatrixArgs args{trans, address, {r[0], r[1], r[2], r[3]}};
  warp_collective(WarpOp::Ldmatrix, 0xffffffffu, &args, file, line, complete_ldmatrix);
  if (state().launch->aborted) fault(FaultKind::WarpDivergence, "(see the first fault)");
}

void cp_async(const char* text, uint32_t dst, const void* src, int src_bytes, const char* file, int line) {
  State& s = state();
  Thread& t = *s.current;
  // "cp.async.cg.shared.global [%0], [%1], 16, %2;": the copy size is the literal after the two
  // address operands; .cg takes 16 bytes only, .ca 4, 8 or 16.
  const bool cg = std::strncmp(text, "cp.async.cg.shared.global [", 27) == 0;
  const bool ca = std::strncmp(text, "cp.async.ca.shared.global [", 27) == 0;
  const char* size_text = std::strstr(text, "], ");
  size_text = size_text ? std::strstr(size_text + 3, "], ") : nullptr;
  const int size = size_text ? std::atoi(size_text + 3) : 0;
  if (!(cg || ca) || !(size == 16 || (ca && (size == 4 || size == 8)))) unsupported(text, file, line);
  const auto src_address = reinterpret_cast<uintptr_t>(src);
  if (dst % uint32_t(size))
    fault(FaultKind::Misaligned, describe_thread(t) + " issues cp.async (" + where(file, line) +
                                     ") into shared offset " + hex(dst) + ", not " + std::to_string(size) +
                                     "-byte aligned");
  if (src_bytes < 0 || src_bytes > size)
    fault(FaultKind::OutOfBounds, describe_thread(t) + " issues cp.async (" + where(file, line) + ") with src-size " +
                                      std::to_string(src_bytes) + " > cp-size " + std::to_string(size));
  if (src_bytes > 0) {
    if (src_address % uint32_t(size))
      fault(FaultKind::Misaligned, describe_thread(t) + " issues cp.async (" + where(file, line) + ") from " +
                                       describe_address(src_address) + ", not " + std::to_string(size) +
                                       "-byte aligned");
    check_global(t, src_address, size_t(src_bytes), false, "reads (cp.async source)");
  }
  if (!shared_range_valid(dst, uint32_t(size)))
    fault(FaultKind::OutOfBounds, describe_thread(t) + " issues cp.async (" + where(file, line) +
                                      ") into shared offset " + hex(dst) + ", outside the block's shared memory");
  for (int i = 0; i < size && s.options.check_shared; ++i) {
    ByteShadow& sh = s.shadow[dst + uint32_t(i)];
    if (sh.pending)
      fault(FaultKind::AsyncCopyInFlight, describe_thread(t) + " issues cp.async (" + where(file, line) +
                                              ") into shared offset " + hex(dst + uint32_t(i)) +
                                              " while an earlier cp.async into it (by " +
                                              describe_thread(s.threads[sh.pending - 1]) + ") has not landed");
    // The copy may land at any moment from now on: it must not race with what others did since
    // the last barrier.
    if (!ordered(sh.write, t))
      fault(FaultKind::SharedRace, describe_thread(t) + " issues cp.async (" + where(file, line) +
                                       ") into shared offset " + hex(dst + uint32_t(i)) + " written by " +
                                       describe_thread(s.threads[sh.write.tid]) + " with no barrier in between");
    for (const AccessRecord* r : {&sh.read1, &sh.read2})
      if (!ordered(*r, t))
        fault(FaultKind::SharedRace, describe_thread(t) + " issues cp.async (" + where(file, line) +
                                         ") into shared offset " + hex(dst + uint32_t(i)) + " read by " +
                                         describe_thread(s.threads[r->tid]) + " with no barrier in between");
  }
  for (int i = 0; i < size; ++i) s.shadow[dst + uint32_t(i)].pending = uint16_t(t.tid + 1);
  t.interval.push_back({dst, uint32_t(size), cp_async_site(file, line)});
  AsyncCopy c{dst, uint32_t(size), t.open_group, {}};
  if (src_bytes > 0) std::memcpy(c.data, src, size_t(src_bytes));
  t.copies.push_back(c);
}

void cp_async_commit(const char* text) {
  if (std::strncmp(text, "cp.async.commit_group", 21) != 0 && std::strncmp(text, "cp.async.wait_all", 17) != 0)
    unsupported(text, "cp.async", 0);
  state().current->open_group++;
}

void cp_async_wait(const char* text, int n) {
  if (std::strncmp(text, "cp.async.wait_group", 19) != 0 && std::strncmp(text, "cp.async.wait_all", 17) != 0)
    unsupported(text, "cp.async", 0);
  Thread& t = *state().current;
  // Groups 0 .. open_group-1 are committed; all but the newest n of them must now be complete.
  const int land_below = t.open_group - n;
  auto keep = std::stable_partition(t.copies.begin(), t.copies.end(),
                                    [&](const AsyncCopy& c) { return c.group >= land_below; });
  for (auto it = keep; it != t.copies.end(); ++it) land(t, *it);
  t.copies.erase(keep, t.copies.end());
}

}  // namespace ferry::emu::ptx
