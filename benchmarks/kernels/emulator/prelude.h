// benchmarks/kernels/emulator/prelude.h — just enough of the CUDA execution model on the CPU to run
// the CUDA kernels' own source text (one std::thread per CUDA thread, std::barrier for
// __syncthreads and for each warp's shuffles and tensor-core products). A development check for a
// machine without a GPU: it catches indexing, masking and fragment-mapping mistakes in the kernels
// as written, not timing or memory-model problems. The mma emulation encodes the PTX ISA fragment
// layouts for m16n8k16 (.bf16): if that reading of the ISA were wrong, kernel and emulator would
// agree on the same wrong layout, so the GPU test remains the judge.
#pragma once
#include <cuda_bf16.h>

#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#undef __global__
#undef __device__
#undef __forceinline__
#undef __launch_bounds__
#undef __shared__
#undef __align__
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__
#define __align__(n) __attribute__((aligned(n)))

struct EmuDim {
  unsigned x = 0, y = 0, z = 0;
};
inline thread_local EmuDim threadIdx, blockIdx;
inline EmuDim blockDim, gridDim;

using std::max;
using std::min;
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }

namespace emu {

struct Warp {
  std::barrier<> sync{32};
  double f[32];  // wide enough for a shuffled double
  uint32_t a[32][4], b[32][2];
  const void* rows[32];
};
struct Block {
  std::unique_ptr<std::barrier<>> sync;
  std::vector<std::unique_ptr<Warp>> warps;
};
inline Block* g_block = nullptr;

inline unsigned linear_thread() { return threadIdx.y * blockDim.x + threadIdx.x; }
inline Warp& my_warp() { return *g_block->warps[linear_thread() / 32]; }

inline float bf16_bits_to_float(uint16_t bits) {
  uint32_t u = uint32_t(bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline float lo(uint32_t r) { return bf16_bits_to_float(uint16_t(r & 0xffffu)); }
inline float hi(uint32_t r) { return bf16_bits_to_float(uint16_t(r >> 16)); }

// D += A·B for one m16n8k16 product, each lane holding its fragments as the PTX ISA lays them out.
inline void mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  Warp& w = my_warp();
  const int lane = linear_thread() % 32;
  std::memcpy(w.a[lane], a, sizeof(a));
  std::memcpy(w.b[lane], b, sizeof(b));
  w.sync.arrive_and_wait();
  float A[16][16], B[16][8];
  for (int l = 0; l < 32; ++l) {
    const int g = l / 4, t = l % 4;
    A[g][2 * t] = lo(w.a[l][0]), A[g][2 * t + 1] = hi(w.a[l][0]);
    A[g + 8][2 * t] = lo(w.a[l][1]), A[g + 8][2 * t + 1] = hi(w.a[l][1]);
    A[g][2 * t + 8] = lo(w.a[l][2]), A[g][2 * t + 9] = hi(w.a[l][2]);
    A[g + 8][2 * t + 8] = lo(w.a[l][3]), A[g + 8][2 * t + 9] = hi(w.a[l][3]);
    B[2 * t][g] = lo(w.b[l][0]), B[2 * t + 1][g] = hi(w.b[l][0]);
    B[2 * t + 8][g] = lo(w.b[l][1]), B[2 * t + 9][g] = hi(w.b[l][1]);
  }
  w.sync.arrive_and_wait();
  const int g = lane / 4, t = lane % 4;
  for (int i = 0; i < 4; ++i) {
    const int row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
    float s = 0;
    for (int k = 0; k < 16; ++k) s += A[row][k] * B[k][col];
    d[i] += s;
  }
}

// ldmatrix.sync.aligned.m8n8.x4[.trans].shared.b16: lane L gives row L % 8 of matrix L / 8; lane
// (g = L / 4, t = L % 4) receives (M_j[g][2t], M_j[g][2t+1]) in r[j], or with .trans
// (M_j[2t][g], M_j[2t+1][g]); the first of the pair in the low half.
inline void ldmatrix_x4(uint32_t (&r)[4], const void* row, bool trans) {
  Warp& w = my_warp();
  const int lane = linear_thread() % 32;
  w.rows[lane] = row;
  w.sync.arrive_and_wait();
  const int g = lane / 4, t = lane % 4;
  for (int j = 0; j < 4; ++j) {
    uint16_t lo16, hi16;
    if (trans) {
      std::memcpy(&lo16, static_cast<const char*>(w.rows[8 * j + 2 * t]) + 2 * g, 2);
      std::memcpy(&hi16, static_cast<const char*>(w.rows[8 * j + 2 * t + 1]) + 2 * g, 2);
    } else {
      std::memcpy(&lo16, static_cast<const char*>(w.rows[8 * j + g]) + 2 * (2 * t), 2);
      std::memcpy(&hi16, static_cast<const char*>(w.rows[8 * j + g]) + 2 * (2 * t + 1), 2);
    }
    r[j] = uint32_t(lo16) | (uint32_t(hi16) << 16);
  }
  w.sync.arrive_and_wait();
}

// cp.async as a synchronous copy: the kernels' waits and barriers then have nothing to order, so
// the emulator checks where the bytes go, not that the waits are in the right places.
inline void cp_async16(void* dst, const void* src, int src_bytes) {
  if (src_bytes == 16)
    std::memcpy(dst, src, 16);
  else
    std::memset(dst, 0, 16);
}

// Blocks one after another (shared memory is one global array), threads of a block concurrently.
inline void run_grid(EmuDim grid, EmuDim block_dim, const std::function<void()>& kernel) {
  const unsigned threads = block_dim.x * block_dim.y;
  gridDim = grid;
  blockDim = block_dim;
  for (unsigned by = 0; by < grid.y; ++by)
    for (unsigned bx = 0; bx < grid.x; ++bx) {
      Block block;
      block.sync = std::make_unique<std::barrier<>>(threads);
      for (unsigned w = 0; w < threads / 32; ++w) block.warps.push_back(std::make_unique<Warp>());
      g_block = &block;
      std::vector<std::thread> pool;
      for (unsigned t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
          threadIdx = EmuDim{t % block_dim.x, t / block_dim.x, 0};
          blockIdx = EmuDim{bx, by, 0};
          kernel();
        });
      for (auto& th : pool) th.join();
    }
}

inline void run_grid(EmuDim grid, unsigned threads, const std::function<void()>& kernel) {
  run_grid(grid, EmuDim{threads, 1, 1}, kernel);
}

}  // namespace emu

inline void __syncthreads() { emu::g_block->sync->arrive_and_wait(); }
inline void __syncwarp(unsigned = 0xffffffffu) { emu::my_warp().sync.arrive_and_wait(); }
template <typename T>
inline T __shfl_xor_sync(unsigned, T v, int mask) {
  emu::Warp& w = emu::my_warp();
  const int lane = emu::linear_thread() % 32;
  std::memcpy(&w.f[lane], &v, sizeof(T));
  w.sync.arrive_and_wait();
  T r;
  std::memcpy(&r, &w.f[lane ^ mask], sizeof(T));
  w.sync.arrive_and_wait();
  return r;
}
inline size_t __cvta_generic_to_shared(const void* p) { return reinterpret_cast<size_t>(p); }
inline int4 __ldcs(const int4* p) { return *p; }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
#define FERRY_CUDA_CHECK(call) ((void)0)
