// kernels/emulator/device.h — the CUDA device side on the CPU, force-included (-include) into every
// kernel source the translator (translate.cpp) has rewritten. It supplies what nvcc would: the
// thread coordinates, barriers, warp shuffles, the PTX instructions ferry's kernels use through
// inline asm (mma.sync, ldmatrix, cp.async), shared-memory declarations and the launch that
// `kernel<<<grid, block, smem, stream>>>(args)` becomes. Everything with state lives in the
// runtime (scheduler.cpp, memory.cpp, ptx.cpp), compiled without instrumentation; this header only
// forwards to it, so that the kernel's own loads and stores are the only instrumented accesses.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

// host_defines.h leaves these undefined outside nvcc.
#define __launch_bounds__(...)

namespace ferry::emu {

struct Builtins {
  uint3 thread_idx, block_idx;
  dim3 block_dim, grid_dim;
};
extern Builtins g_builtins;

// ---- runtime entry points (uninstrumented) ----------------------------------------------------
void kernel_entry(const char* pretty_function, const void* kernel, unsigned max_threads);
void* static_shared(int id, size_t bytes, size_t align);
void* dynamic_shared();
size_t shared_address(const void* p, const char* file, int line);
void syncthreads(const char* file, int line);
void syncwarp(unsigned mask, const char* file, int line);
enum class ShuffleKind { Xor, Down, Up, Index };
uint64_t shuffle(ShuffleKind kind, unsigned mask, uint64_t bits, int arg, int width, const char* file, int line);

struct LaunchConfig {
  dim3 grid, block;
  size_t dynamic_shared;
  cudaStream_t stream;
  LaunchConfig(dim3 g, dim3 b, size_t smem = 0, cudaStream_t s = nullptr)
      : grid(g), block(b), dynamic_shared(smem), stream(s) {}
};
// Runs `body(frame)` once per thread of every block. `frame` (frame_bytes) holds the kernel's
// arguments: the kernel may read it, as it reads its parameter space on a GPU.
void launch(const char* kernel_text, const char* host_function, const LaunchConfig& config,
            void (*body)(const void* frame), const void* frame, size_t frame_bytes);

// kernel<<<config>>>(args...) → launch_kernel("kernel", __PRETTY_FUNCTION__, config, call, args...):
// the arguments are evaluated once on the host, as CUDA does, and every thread gets its own copy.
template <typename Call, typename... Args>
void launch_kernel(const char* kernel_text, const char* host_function, const LaunchConfig& config, Call call,
                   Args&&... args) {
  struct Frame {
    Call call;
    std::tuple<std::decay_t<Args>...> params;
  };
  const Frame frame{call, std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...)};
  launch(
      kernel_text, host_function, config,
      [](const void* p) {
        const Frame& f = *static_cast<const Frame*>(p);
        auto params = f.params;
        std::apply(f.call, params);
      },
      &frame, sizeof(frame));
}

namespace ptx {
// One function per PTX instruction form the kernels use; `text` is the asm template, checked by
// the runtime against the forms it models. Operands in asm order (outputs, then inputs); the
// defaulted file and line name the asm statement in messages.
void mma_m16n8k16_bf16(const char* text, float* d[4], const uint32_t a[4], const uint32_t b[2], const char* file,
                       int line);
void ldmatrix_x4(const char* text, bool trans, uint32_t* r[4], uint32_t address, const char* file, int line);
void cp_async(const char* text, uint32_t dst, const void* src, int src_bytes, const char* file, int line);
void cp_async_commit(const char* text);
void cp_async_wait(const char* text, int n);

inline void mma_sync_aligned_m16n8k16_row_col_f32_bf16_bf16_f32(const char* text, float& d0, float& d1, float& d2,
                                                                float& d3, uint32_t a0, uint32_t a1, uint32_t a2,
                                                                uint32_t a3, uint32_t b0, uint32_t b1,
                                                                const char* file = __builtin_FILE(),
                                                                int line = __builtin_LINE()) {
  float* d[4] = {&d0, &d1, &d2, &d3};
  const uint32_t a[4] = {a0, a1, a2, a3}, b[2] = {b0, b1};
  mma_m16n8k16_bf16(text, d, a, b, file, line);
}
inline void ldmatrix_sync_aligned_m8n8_x4_shared_b16(const char* text, uint32_t& r0, uint32_t& r1, uint32_t& r2,
                                                      uint32_t& r3, uint32_t address,
                                                      const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  uint32_t* r[4] = {&r0, &r1, &r2, &r3};
  ldmatrix_x4(text, false, r, address, file, line);
}
inline void ldmatrix_sync_aligned_m8n8_x4_trans_shared_b16(const char* text, uint32_t& r0, uint32_t& r1,
                                                            uint32_t& r2, uint32_t& r3, uint32_t address,
                                                            const char* file = __builtin_FILE(),
                                                            int line = __builtin_LINE()) {
  uint32_t* r[4] = {&r0, &r1, &r2, &r3};
  ldmatrix_x4(text, true, r, address, file, line);
}
inline void cp_async_cg_shared_global(const char* text, uint32_t dst, const void* src, int src_bytes,
                                      const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  cp_async(text, dst, src, src_bytes, file, line);
}
inline void cp_async_ca_shared_global(const char* text, uint32_t dst, const void* src, int src_bytes,
                                      const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  cp_async(text, dst, src, src_bytes, file, line);
}
inline void cp_async_commit_group(const char* text) { cp_async_commit(text); }
inline void cp_async_wait_group(const char* text, int n) { cp_async_wait(text, n); }
inline void cp_async_wait_all(const char* text) {
  cp_async_commit(text);
  cp_async_wait(text, 0);
}
}  // namespace ptx

// The translator writes `*reinterpret_cast<T*>(p)` and `reinterpret_cast<T*>(p)[i]` as
// `*aligned_cast<T*>(p)`: a pointer turned into T and dereferenced must be aligned as T is (a
// GPU faults on a 16-byte vector access off the 16-byte grid; see memory.cpp).
void check_vector_alignment(const void* p, size_t align, size_t bytes, const char* type, const char* file, int line);

template <typename P, typename Q>
P aligned_cast(Q q, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  P p = reinterpret_cast<P>(q);
  using T = std::remove_cv_t<std::remove_pointer_t<P>>;
  if constexpr (alignof(T) > 1) check_vector_alignment(p, alignof(T), sizeof(T), __PRETTY_FUNCTION__, file, line);
  return p;
}

template <typename T>
uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>);
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  return bits;
}
template <typename T>
T from_bits(uint64_t bits) {
  T v;
  std::memcpy(&v, &bits, sizeof(T));
  return v;
}

}  // namespace ferry::emu

// ---- the names device code uses ----------------------------------------------------------------
#define threadIdx (::ferry::emu::g_builtins.thread_idx)
#define blockIdx (::ferry::emu::g_builtins.block_idx)
#define blockDim (::ferry::emu::g_builtins.block_dim)
#define gridDim (::ferry::emu::g_builtins.grid_dim)
constexpr int warpSize = 32;

inline void __syncthreads(const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  ::ferry::emu::syncthreads(file, line);
}
inline void __syncwarp(unsigned mask = 0xffffffffu, const char* file = __builtin_FILE(),
                       int line = __builtin_LINE()) {
  ::ferry::emu::syncwarp(mask, file, line);
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = warpSize, const char* file = __builtin_FILE(),
                  int line = __builtin_LINE()) {
  return ::ferry::emu::from_bits<T>(::ferry::emu::shuffle(::ferry::emu::ShuffleKind::Xor, mask,
                                                          ::ferry::emu::to_bits(v), lane_mask, width, file, line));
}
template <typename T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = warpSize, const char* file = __builtin_FILE(),
                   int line = __builtin_LINE()) {
  return ::ferry::emu::from_bits<T>(::ferry::emu::shuffle(::ferry::emu::ShuffleKind::Down, mask,
                                                          ::ferry::emu::to_bits(v), int(delta), width, file, line));
}
template <typename T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = warpSize, const char* file = __builtin_FILE(),
                 int line = __builtin_LINE()) {
  return ::ferry::emu::from_bits<T>(::ferry::emu::shuffle(::ferry::emu::ShuffleKind::Up, mask,
                                                          ::ferry::emu::to_bits(v), int(delta), width, file, line));
}
template <typename T>
T __shfl_sync(unsigned mask, T v, int src_lane, int width = warpSize, const char* file = __builtin_FILE(),
              int line = __builtin_LINE()) {
  return ::ferry::emu::from_bits<T>(::ferry::emu::shuffle(::ferry::emu::ShuffleKind::Index, mask,
                                                          ::ferry::emu::to_bits(v), src_lane, width, file, line));
}

inline size_t __cvta_generic_to_shared(const void* p, const char* file = __builtin_FILE(),
                                       int line = __builtin_LINE()) {
  return ::ferry::emu::shared_address(p, file, line);
}

// Cache-hinted loads: plain loads here (the access is instrumented like any other), checked for
// the vector type's alignment.
template <typename T>
inline T __ldcs(const T* p, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  if constexpr (alignof(T) > 1) ::ferry::emu::check_vector_alignment(p, alignof(T), sizeof(T), "__ldcs", file, line);
  return *p;
}
template <typename T>
inline T __ldg(const T* p, const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  if constexpr (alignof(T) > 1) ::ferry::emu::check_vector_alignment(p, alignof(T), sizeof(T), "__ldg", file, line);
  return *p;
}

inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float a, float b) { return a / b; }

inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline long min(long a, long b) { return a < b ? a : b; }
inline long max(long a, long b) { return a > b ? a : b; }
inline unsigned long min(unsigned long a, unsigned long b) { return a < b ? a : b; }
inline unsigned long max(unsigned long a, unsigned long b) { return a > b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
