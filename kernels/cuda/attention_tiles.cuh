// kernels/cuda/attention_tiles.cuh — what the attention forward and backward share: the bf16
// tensor-core product (mma.sync m16n8k16, fp32 accumulators), the fragment loads from shared memory
// and the tile loaders from the [B, T, 3C] qkv layout.
//
// Fragment layouts (PTX ISA, "mma.m16n8k16" for .bf16), g = lane / 4, t = lane % 4:
//   A 16×16 row-major: reg0 = A[g][2t..2t+1], reg1 = A[g+8][2t..], reg2 = A[g][2t+8..], reg3 = A[g+8][2t+8..]
//   B 16×8  (k × n):   reg0 = B[2t..2t+1][g],  reg1 = B[2t+8..2t+9][g]
//   C 16×8  fp32:      c0,c1 = C[g][2t..2t+1], c2,c3 = C[g+8][2t..2t+1]
// So two C tiles side by side (n = 16) are exactly one A fragment (k = 16) once rounded to bf16: the
// probabilities go from one product into the next without touching shared memory (FlashAttention-2).
// Fragments come from shared memory through ldmatrix (four 8×8 matrices per instruction): A from a
// row-major tile, B from a tile stored n-major (Y[n][k], k contiguous: load_b_x2) or k-major (X[k][n],
// the natural layout of V, K, Q and dO rows) through ldmatrix.trans, which hands each lane the
// transposed pairs (load_b_trans_x2) — no transposed copy in shared memory. Row strides are padded by 8 elements
// (16 bytes) so that the 8 rows a fragment load touches fall on distinct banks.
#pragma once
#include "kernels/cuda/common.cuh"

namespace ferry::kernels::cuda::attention {

constexpr int kPad = 8;
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&v);
}

// ldmatrix.x4: lane L supplies the address of row L % 8 of matrix L / 8; each lane receives, for
// matrix j, the pair (M_j[g][2t], M_j[g][2t+1]) in r[j]. Addresses must be 16-byte aligned.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const __nv_bfloat16* row) {
  const auto addr = static_cast<uint32_t>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// A fragment: rows r0..r0+15, columns k0..k0+15 of a row-major tile with row stride ld. Matrix j is
// rows r0 + 8·(j & 1), columns k0 + 8·(j >> 1): exactly the order of a[0..3].
__device__ __forceinline__ void load_a(uint32_t (&a)[4], const __nv_bfloat16* x, int ld, int r0, int k0, int lane) {
  const int j = lane / 8, i = lane % 8;
  ldmatrix_x4(a, x + (r0 + i + 8 * (j & 1)) * ld + k0 + 8 * (j >> 1));
}

// B fragments for B[k][n] = y[n][k] (y n-major, stride ld): b0 for n0..n0+7, b1 for n0+8..n0+15, both
// for k0..k0+15. Matrix j is rows (n) n0 + 8·(j >> 1), columns (k) k0 + 8·(j & 1).
__device__ __forceinline__ void load_b_x2(uint32_t (&b0)[2], uint32_t (&b1)[2], const __nv_bfloat16* y, int ld,
                                          int n0, int k0, int lane) {
  const int j = lane / 8, i = lane % 8;
  uint32_t r[4];
  ldmatrix_x4(r, y + (n0 + i + 8 * (j >> 1)) * ld + k0 + 8 * (j & 1));
  b0[0] = r[0];
  b0[1] = r[1];
  b1[0] = r[2];
  b1[1] = r[3];
}

// ldmatrix.x4.trans: lane L supplies the address of row L % 8 of matrix L / 8; each lane receives, for
// matrix j, the pair (M_j[2t][g], M_j[2t+1][g]) in r[j]. Addresses must be 16-byte aligned.
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const __nv_bfloat16* row) {
  const auto addr = static_cast<uint32_t>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// B fragments for B[k][n] = x[k][n] (x row-major, stride ld): b0 for columns n0..n0+7, b1 for
// n0+8..n0+15, both for rows k0..k0+15. Matrix j of the ldmatrix is rows k0 + 8·(j & 1), columns
// n0 + 8·(j >> 1), so r = {b0[0], b0[1], b1[0], b1[1]}.
__device__ __forceinline__ void load_b_trans_x2(uint32_t (&b0)[2], uint32_t (&b1)[2], const __nv_bfloat16* x, int ld,
                                                int k0, int n0, int lane) {
  const int j = lane / 8, i = lane % 8;
  uint32_t r[4];
  ldmatrix_x4_trans(r, x + (k0 + i + 8 * (j & 1)) * ld + n0 + 8 * (j >> 1));
  b0[0] = r[0];
  b0[1] = r[1];
  b1[0] = r[2];
  b1[1] = r[3];
}

// Two adjacent fp32 C tiles (columns 16kk..16kk+15) rounded into one bf16 A fragment.
__device__ __forceinline__ void c_to_a(uint32_t (&a)[4], const float (&c0)[4], const float (&c1)[4]) {
  a[0] = pack_bf16(c0[0], c0[1]);
  a[1] = pack_bf16(c0[2], c0[3]);
  a[2] = pack_bf16(c1[0], c1[1]);
  a[3] = pack_bf16(c1[2], c1[3]);
}

// Rows row0..row0+ROWS-1 (zero past `rows_valid`) of HS channels each, global row stride `stride`,
// into a row-major shared tile with row stride HS + kPad. 16-byte accesses on both sides.
template <int ROWS, int HS>
__device__ __forceinline__ void load_tile(__nv_bfloat16* tile, const __nv_bfloat16* src, size_t stride, int row0,
                                          int rows_valid) {
  constexpr int kChunks = HS / 8;
  for (int idx = threadIdx.x; idx < ROWS * kChunks; idx += blockDim.x) {
    const int r = idx / kChunks, c = idx % kChunks;
    Bf16x8 v;
    if (row0 + r < rows_valid) {
      v = load8(src + size_t(row0 + r) * stride + 8 * c);
    } else {
#pragma unroll
      for (int k = 0; k < 8; ++k) v.v[k] = __float2bfloat16_rn(0.0f);
    }
    store8(tile + r * (HS + kPad) + 8 * c, v);
  }
}

// Asynchronous 16-byte global→shared copy (cp.async, sm_80+): the copy engine fills shared memory
// while the warps compute on the other buffer. src_bytes = 0 writes zeros without reading `src`.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  const auto addr = static_cast<uint32_t>(__cvta_generic_to_shared(dst));
  const int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(addr), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// Waits until at most N of this thread's committed groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// load_tile through cp.async: issues the copies and returns; the caller commits, waits and
// synchronizes the block before reading the tile.
template <int ROWS, int HS>
__device__ __forceinline__ void load_tile_async(__nv_bfloat16* tile, const __nv_bfloat16* src, size_t stride, int row0,
                                                int rows_valid) {
  constexpr int kChunks = HS / 8;
  for (int idx = threadIdx.x; idx < ROWS * kChunks; idx += blockDim.x) {
    const int r = idx / kChunks, c = idx % kChunks;
    const bool valid = row0 + r < rows_valid;
    cp_async16(tile + r * (HS + kPad) + 8 * c, valid ? src + size_t(row0 + r) * stride + 8 * c : src, valid);
  }
}

// The grid of the flash kernels: one block per (tile of rows, b·h), all in grid.x, head-major —
// block x = bh·tiles + i, the order of the former (tiles, B·NH) grid. B·NH does not go in grid.y,
// which stops at 65535 (B = 5462 at 12 heads).
inline dim3 tile_grid(int tiles, int BNH) {
  const size_t blocks = size_t(tiles) * size_t(BNH);
  FERRY_CUDA_REQUIRE(blocks <= 2147483647u, std::to_string(tiles) + " tiles × " + std::to_string(BNH) +
                                                " heads exceed 2^31 - 1 blocks");
  return dim3(static_cast<unsigned>(blocks));
}
struct TileIndex {
  int tile, bh;
};
// This block's tile and (b, h); with `reverse` the tiles run last first within each head (causal:
// the last query tiles see the most keys, so they start first).
__device__ __forceinline__ TileIndex tile_index(int tiles, bool reverse) {
  const int i = static_cast<int>(blockIdx.x % unsigned(tiles)), bh = static_cast<int>(blockIdx.x / unsigned(tiles));
  return {reverse ? tiles - 1 - i : i, bh};
}

// Keys at or past this index are never attended to in batch row b.
__device__ __forceinline__ int key_limit(const int32_t* key_lengths, int b, int Tn) {
  if (!key_lengths) return Tn;
  return max(0, min(Tn, key_lengths[b]));
}

inline void set_smem(const void* kernel, size_t bytes) {
  FERRY_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
}

}  // namespace ferry::kernels::cuda::attention
