// kernels/cuda/attention_backward.cu — flash-style attention backward, CUDA twin of the backward in
// kernels/cpu/attention.cpp (contract in kernels/attention.h). Deterministic: no atomics.
//
//   (1) D[b,h,q] = Σ_d dout·out                               one thread per (b, q, h)
//   (2) dK, dV:  one block per 64-key tile (4 warps × 16 keys) walks the query tiles:
//         Sᵀ = K·Qᵀ, Pᵀ = exp(Sᵀ·scale − lse_q), dPᵀ = V·dOᵀ, dSᵀ = Pᵀ∘(dPᵀ − D_q)·scale,
//         dV += Pᵀ·dO, dK += dSᵀ·Q          (Pᵀ, dSᵀ stay in registers: C tiles become A fragments)
//   (3) dQ:      one block per 64-query tile walks the key tiles: S, P, dP, dS again, dQ += dS·K.
// Recomputing S and dP in (3) costs two more products than an atomics-based dQ; in exchange every
// output element is written once, by one thread, in a fixed order. In (2) and (3) the walked tiles
// are double-buffered with cp.async: tile j+1 is in flight while the warps work on tile j.
#include "kernels/attention.h"
#include "kernels/cuda/attention_tiles.cuh"

namespace ferry::kernels::cuda {

namespace {

using namespace attention;

constexpr int kWarps = 4;
constexpr int kOwnTile = 16 * kWarps;  // rows a block owns: 64 keys in (2), 64 queries in (3)
// Tile of the walked dimension: smaller at HS = 128 so that the dK and dV (or dQ) accumulators and
// the S, dP tiles fit in registers together without spilling.
template <int HS>
constexpr int kWalkTile = HS == 128 ? 32 : 64;

__global__ void attention_backward_dot_kernel(float* D, const __nv_bfloat16* dout, const __nv_bfloat16* out, int B,
                                              int Tn, int NH, int HS) {
  const size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x;  // (b, t, h), h fastest
  if (i >= size_t(B) * Tn * NH) return;
  const int h = static_cast<int>(i % NH);
  const size_t bt = i / NH;
  const int t = static_cast<int>(bt % Tn), b = static_cast<int>(bt / Tn);
  const size_t base = bt * size_t(NH) * HS + size_t(h) * HS;
  float s = 0.0f;
  for (int d = 0; d < HS; d += 8) {
    const Bf16x8 x = load8(dout + base + d), y = load8(out + base + d);
#pragma unroll
    for (int k = 0; k < 8; ++k) s += __bfloat162float(x.v[k]) * __bfloat162float(y.v[k]);
  }
  D[(size_t(b) * NH + h) * Tn + t] = s;
}

template <int HS>
constexpr size_t dkdv_smem() {
  constexpr int R = kWalkTile<HS>;
  // K, V owned; 2 × (Q, dO) walked; 2 × (lse, D) of the walked queries.
  return sizeof(__nv_bfloat16) * (2 * size_t(kOwnTile) + 4 * size_t(R)) * (HS + kPad) + 4 * sizeof(float) * R;
}

template <int HS>
__global__ void __launch_bounds__(kWarps * 32)
    attention_backward_dkdv_kernel(__nv_bfloat16* dqkv, const __nv_bfloat16* dout, const __nv_bfloat16* qkv,
                                   const float* lse, const float* D, const int32_t* key_lengths, int Tn, int NH,
                                   bool causal) {
  constexpr int R = kWalkTile<HS>;
  constexpr int LD = HS + kPad;
  extern __shared__ __align__(16) unsigned char smem[];
  __nv_bfloat16* k_s = reinterpret_cast<__nv_bfloat16*>(smem);
  __nv_bfloat16* v_s = k_s + kOwnTile * LD;
  // Buffer j & 1 of the walked tiles: Q at qdo_s + 2·(j & 1)·R·LD, dO right after it.
  __nv_bfloat16* qdo_s = v_s + kOwnTile * LD;
  float* lse_buf = reinterpret_cast<float*>(qdo_s + 4 * R * LD);  // [2][R], then D: [2][R]
  float* d_buf = lse_buf + 2 * R;

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const TileIndex tile = tile_index((Tn + kOwnTile - 1) / kOwnTile, false);
  const int bh = tile.bh, b = bh / NH, h = bh % NH;
  const int C = NH * HS;
  const size_t qkv_stride = size_t(3) * C;
  const __nv_bfloat16* q_base = qkv + size_t(b) * Tn * qkv_stride + h * HS;
  const __nv_bfloat16* do_base = dout + size_t(b) * Tn * C + h * HS;
  const float* lse_row = lse + size_t(bh) * Tn;
  const float* d_row = D + size_t(bh) * Tn;
  const int k0 = tile.tile * kOwnTile;
  const float scale = rsqrtf(static_cast<float>(HS));
  const float scale_log2 = scale * kLog2e;
  const int kv_len = key_limit(key_lengths, b, Tn);

  float dk[HS / 8][4], dv[HS / 8][4];
#pragma unroll
  for (int n = 0; n < HS / 8; ++n)
#pragma unroll
    for (int i = 0; i < 4; ++i) dk[n][i] = dv[n][i] = 0.0f;

  const int key_a = k0 + warp * 16 + g, key_b = key_a + 8;
  // Keys past kv_len get no gradient: skip the walk entirely when the whole tile is padding.
  const int q_begin = k0 < kv_len ? (causal ? (k0 / R) * R : 0) : Tn;
  // Q, dO by cp.async; lse and D by plain stores, visible after the barrier that follows the wait.
  auto fetch = [&](int q0, int buf) {
    load_tile_async<R, HS>(qdo_s + 2 * buf * R * LD, q_base, qkv_stride, q0, Tn);
    load_tile_async<R, HS>(qdo_s + (2 * buf + 1) * R * LD, do_base, C, q0, Tn);
    for (int i = threadIdx.x; i < R; i += blockDim.x) {
      const int q = q0 + i;
      const float l = q < Tn ? lse_row[q] : -INFINITY;
      // -inf lse: the query sees no key; +inf makes every exp2 below 0.
      lse_buf[buf * R + i] = l == -INFINITY ? INFINITY : l * kLog2e;
      d_buf[buf * R + i] = q < Tn ? d_row[q] : 0.0f;
    }
  };
  load_tile_async<kOwnTile, HS>(k_s, q_base + C, qkv_stride, k0, Tn);
  load_tile_async<kOwnTile, HS>(v_s, q_base + 2 * C, qkv_stride, k0, Tn);
  if (q_begin < Tn) fetch(q_begin, 0);
  cp_async_commit();

  for (int q0 = q_begin, j = 0; q0 < Tn; q0 += R, ++j) {
    if (q0 + R < Tn) {
      fetch(q0 + R, (j + 1) & 1);  // that buffer was last read in iteration j - 1, ended by a barrier
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const __nv_bfloat16* q_s = qdo_s + 2 * (j & 1) * R * LD;
    const __nv_bfloat16* do_s = q_s + R * LD;
    const float* lse_s = lse_buf + (j & 1) * R;
    const float* d_s = d_buf + (j & 1) * R;

    float st[R / 8][4], dpt[R / 8][4];
#pragma unroll
    for (int n = 0; n < R / 8; ++n)
#pragma unroll
      for (int i = 0; i < 4; ++i) st[n][i] = dpt[n][i] = 0.0f;
#pragma unroll
    for (int dk16 = 0; dk16 < HS / 16; ++dk16) {
      uint32_t ka[4], va[4];
      load_a(ka, k_s, LD, warp * 16, dk16 * 16, lane);
      load_a(va, v_s, LD, warp * 16, dk16 * 16, lane);
#pragma unroll
      for (int n = 0; n < R / 8; n += 2) {
        uint32_t qb0[2], qb1[2], dob0[2], dob1[2];
        load_b_x2(qb0, qb1, q_s, LD, n * 8, dk16 * 16, lane);
        load_b_x2(dob0, dob1, do_s, LD, n * 8, dk16 * 16, lane);
        mma_bf16_16816(st[n], ka, qb0);
        mma_bf16_16816(st[n + 1], ka, qb1);
        mma_bf16_16816(dpt[n], va, dob0);
        mma_bf16_16816(dpt[n + 1], va, dob1);
      }
    }
    // st → Pᵀ, dpt → dSᵀ, element (key, query).
#pragma unroll
    for (int n = 0; n < R / 8; ++n) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int qi = n * 8 + 2 * t + (i & 1);
        const int q = q0 + qi;
        const int key = i < 2 ? key_a : key_b;
        const bool visible = key < kv_len && q < Tn && (!causal || key <= q);
        const float p = visible ? exp2f(st[n][i] * scale_log2 - lse_s[qi]) : 0.0f;
        st[n][i] = p;
        dpt[n][i] = p * (dpt[n][i] - d_s[qi]) * scale;
      }
    }
#pragma unroll
    for (int kk = 0; kk < R / 16; ++kk) {
      uint32_t pa[4], dsa[4];
      c_to_a(pa, st[2 * kk], st[2 * kk + 1]);
      c_to_a(dsa, dpt[2 * kk], dpt[2 * kk + 1]);
#pragma unroll
      for (int n = 0; n < HS / 8; n += 2) {
        uint32_t dob0[2], dob1[2], qb0[2], qb1[2];
        load_b_trans_x2(dob0, dob1, do_s, LD, kk * 16, n * 8, lane);
        load_b_trans_x2(qb0, qb1, q_s, LD, kk * 16, n * 8, lane);
        mma_bf16_16816(dv[n], pa, dob0);
        mma_bf16_16816(dv[n + 1], pa, dob1);
        mma_bf16_16816(dk[n], dsa, qb0);
        mma_bf16_16816(dk[n + 1], dsa, qb1);
      }
    }
    __syncthreads();  // this buffer is refilled in iteration j + 1
  }
  cp_async_wait<0>();

  __nv_bfloat16* dk_base = dqkv + size_t(b) * Tn * qkv_stride + C + h * HS;
  __nv_bfloat16* dv_base = dk_base + C;
#pragma unroll
  for (int n = 0; n < HS / 8; ++n) {
    const int d = n * 8 + 2 * t;
    if (key_a < Tn) {
      *reinterpret_cast<uint32_t*>(dk_base + size_t(key_a) * qkv_stride + d) = pack_bf16(dk[n][0], dk[n][1]);
      *reinterpret_cast<uint32_t*>(dv_base + size_t(key_a) * qkv_stride + d) = pack_bf16(dv[n][0], dv[n][1]);
    }
    if (key_b < Tn) {
      *reinterpret_cast<uint32_t*>(dk_base + size_t(key_b) * qkv_stride + d) = pack_bf16(dk[n][2], dk[n][3]);
      *reinterpret_cast<uint32_t*>(dv_base + size_t(key_b) * qkv_stride + d) = pack_bf16(dv[n][2], dv[n][3]);
    }
  }
}

template <int HS>
constexpr size_t dq_smem() {
  constexpr int R = kWalkTile<HS>;
  return sizeof(__nv_bfloat16) * (2 * size_t(kOwnTile) + 4 * size_t(R)) * (HS + kPad);  // Q, dO; 2 × (K, V)
}

template <int HS>
__global__ void __launch_bounds__(kWarps * 32)
    attention_backward_dq_kernel(__nv_bfloat16* dqkv, const __nv_bfloat16* dout, const __nv_bfloat16* qkv,
                                 const float* lse, const float* D, const int32_t* key_lengths, int Tn, int NH,
                                 bool causal) {
  constexpr int R = kWalkTile<HS>;
  constexpr int LD = HS + kPad;
  extern __shared__ __align__(16) unsigned char smem[];
  __nv_bfloat16* q_s = reinterpret_cast<__nv_bfloat16*>(smem);
  __nv_bfloat16* do_s = q_s + kOwnTile * LD;
  __nv_bfloat16* kv_s = do_s + kOwnTile * LD;  // buffer j & 1: K at kv_s + 2·(j & 1)·R·LD, V after it

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const TileIndex tile = tile_index((Tn + kOwnTile - 1) / kOwnTile, causal);
  const int q_tile = tile.tile;
  const int bh = tile.bh, b = bh / NH, h = bh % NH;
  const int C = NH * HS;
  const size_t qkv_stride = size_t(3) * C;
  const __nv_bfloat16* q_base = qkv + size_t(b) * Tn * qkv_stride + h * HS;
  const __nv_bfloat16* do_base = dout + size_t(b) * Tn * C + h * HS;
  const int q0 = q_tile * kOwnTile;
  const float scale = rsqrtf(static_cast<float>(HS));
  const float scale_log2 = scale * kLog2e;
  const int kv_len = key_limit(key_lengths, b, Tn);
  const int kv_end = causal ? min(kv_len, q0 + kOwnTile) : kv_len;

  const int row_a = q0 + warp * 16 + g, row_b = row_a + 8;
  auto lse_log2 = [&](int row) {
    const float l = row < Tn ? lse[size_t(bh) * Tn + row] : -INFINITY;
    return l == -INFINITY ? INFINITY : l * kLog2e;
  };
  const float lse_a = lse_log2(row_a), lse_b = lse_log2(row_b);
  const float d_a = row_a < Tn ? D[size_t(bh) * Tn + row_a] : 0.0f;
  const float d_b = row_b < Tn ? D[size_t(bh) * Tn + row_b] : 0.0f;

  float dq[HS / 8][4];
#pragma unroll
  for (int n = 0; n < HS / 8; ++n) dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.0f;

  auto fetch = [&](int k0, int buf) {
    load_tile_async<R, HS>(kv_s + 2 * buf * R * LD, q_base + C, qkv_stride, k0, Tn);
    load_tile_async<R, HS>(kv_s + (2 * buf + 1) * R * LD, q_base + 2 * C, qkv_stride, k0, Tn);
  };
  load_tile_async<kOwnTile, HS>(q_s, q_base, qkv_stride, q0, Tn);
  load_tile_async<kOwnTile, HS>(do_s, do_base, C, q0, Tn);
  if (kv_end > 0) fetch(0, 0);
  cp_async_commit();

  for (int k0 = 0, j = 0; k0 < kv_end; k0 += R, ++j) {
    if (k0 + R < kv_end) {
      fetch(k0 + R, (j + 1) & 1);  // that buffer was last read in iteration j - 1, ended by a barrier
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const __nv_bfloat16* k_s = kv_s + 2 * (j & 1) * R * LD;
    const __nv_bfloat16* v_s = k_s + R * LD;

    float s[R / 8][4], dp[R / 8][4];
#pragma unroll
    for (int n = 0; n < R / 8; ++n)
#pragma unroll
      for (int i = 0; i < 4; ++i) s[n][i] = dp[n][i] = 0.0f;
#pragma unroll
    for (int dk16 = 0; dk16 < HS / 16; ++dk16) {
      uint32_t qa[4], doa[4];
      load_a(qa, q_s, LD, warp * 16, dk16 * 16, lane);
      load_a(doa, do_s, LD, warp * 16, dk16 * 16, lane);
#pragma unroll
      for (int n = 0; n < R / 8; n += 2) {
        uint32_t kb0[2], kb1[2], vb0[2], vb1[2];
        load_b_x2(kb0, kb1, k_s, LD, n * 8, dk16 * 16, lane);
        load_b_x2(vb0, vb1, v_s, LD, n * 8, dk16 * 16, lane);
        mma_bf16_16816(s[n], qa, kb0);
        mma_bf16_16816(s[n + 1], qa, kb1);
        mma_bf16_16816(dp[n], doa, vb0);
        mma_bf16_16816(dp[n + 1], doa, vb1);
      }
    }
#pragma unroll
    for (int n = 0; n < R / 8; ++n) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int key = k0 + n * 8 + 2 * t + (i & 1);
        const int row = i < 2 ? row_a : row_b;
        const bool visible = key < kv_len && row < Tn && (!causal || key <= row);
        const float p = visible ? exp2f(s[n][i] * scale_log2 - (i < 2 ? lse_a : lse_b)) : 0.0f;
        s[n][i] = p * (dp[n][i] - (i < 2 ? d_a : d_b)) * scale;  // dS
      }
    }
#pragma unroll
    for (int kk = 0; kk < R / 16; ++kk) {
      uint32_t dsa[4];
      c_to_a(dsa, s[2 * kk], s[2 * kk + 1]);
#pragma unroll
      for (int n = 0; n < HS / 8; n += 2) {
        uint32_t kb0[2], kb1[2];
        load_b_trans_x2(kb0, kb1, k_s, LD, kk * 16, n * 8, lane);
        mma_bf16_16816(dq[n], dsa, kb0);
        mma_bf16_16816(dq[n + 1], dsa, kb1);
      }
    }
    __syncthreads();  // this buffer is refilled in iteration j + 1
  }
  cp_async_wait<0>();

  __nv_bfloat16* dq_base = dqkv + size_t(b) * Tn * qkv_stride + h * HS;
#pragma unroll
  for (int n = 0; n < HS / 8; ++n) {
    const int d = n * 8 + 2 * t;
    if (row_a < Tn)
      *reinterpret_cast<uint32_t*>(dq_base + size_t(row_a) * qkv_stride + d) = pack_bf16(dq[n][0], dq[n][1]);
    if (row_b < Tn)
      *reinterpret_cast<uint32_t*>(dq_base + size_t(row_b) * qkv_stride + d) = pack_bf16(dq[n][2], dq[n][3]);
  }
}

template <int HS>
void launch_backward(bf16* dqkv, const bf16* dout, const bf16* qkv, const float* lse, const float* D,
                     const int32_t* key_lengths, int B, int Tn, int NH, bool causal, cudaStream_t stream) {
  static bool configured = false;  // per-function attribute: once is enough
  if (!configured) {
    set_smem(reinterpret_cast<const void*>(attention_backward_dkdv_kernel<HS>), dkdv_smem<HS>());
    set_smem(reinterpret_cast<const void*>(attention_backward_dq_kernel<HS>), dq_smem<HS>());
    configured = true;
  }
  const dim3 grid = tile_grid(static_cast<int>(ceil_div(Tn, kOwnTile)), B * NH);
  attention_backward_dkdv_kernel<HS><<<grid, kWarps * 32, dkdv_smem<HS>(), stream>>>(
      dev(dqkv), dev(dout), dev(qkv), lse, D, key_lengths, Tn, NH, causal);
  FERRY_CUDA_CHECK_LAUNCH(HS == 64 ? "attention_backward_dkdv_kernel<64>" : "attention_backward_dkdv_kernel<128>");
  attention_backward_dq_kernel<HS><<<grid, kWarps * 32, dq_smem<HS>(), stream>>>(dev(dqkv), dev(dout), dev(qkv), lse,
                                                                                 D, key_lengths, Tn, NH, causal);
  FERRY_CUDA_CHECK_LAUNCH(HS == 64 ? "attention_backward_dq_kernel<64>" : "attention_backward_dq_kernel<128>");
}

}  // namespace

size_t attention_backward_workspace_bytes(int B, int Tn, int NH) { return sizeof(float) * size_t(B) * Tn * NH; }

void attention_backward(bf16* dqkv, const bf16* dout, const bf16* qkv, const bf16* out, const float* lse,
                        const int32_t* key_lengths, int B, int Tn, int NH, int HS, bool causal, void* workspace,
                        size_t workspace_bytes, cudaStream_t stream) {
  FERRY_CUDA_REQUIRE(HS == 64 || HS == 128, "HS=" + std::to_string(HS));
  FERRY_CUDA_REQUIRE(workspace_bytes >= attention_backward_workspace_bytes(B, Tn, NH), "workspace too small");
  if (B == 0 || Tn == 0 || NH == 0) return;
  float* D = static_cast<float*>(workspace);
  const size_t rows = size_t(B) * Tn * NH;
  attention_backward_dot_kernel<<<ceil_div(rows, 256), 256, 0, stream>>>(D, dev(dout), dev(out), B, Tn, NH, HS);
  FERRY_CUDA_CHECK_LAUNCH("attention_backward_dot_kernel");
  if (HS == 64)
    launch_backward<64>(dqkv, dout, qkv, lse, D, key_lengths, B, Tn, NH, causal, stream);
  else
    launch_backward<128>(dqkv, dout, qkv, lse, D, key_lengths, B, Tn, NH, causal, stream);
}

}  // namespace ferry::kernels::cuda
