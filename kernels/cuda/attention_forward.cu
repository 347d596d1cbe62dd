// kernels/cuda/attention_forward.cu — flash-style attention forward, CUDA twin of the forward in
// kernels/cpu/attention.cpp (contract in kernels/attention.h).
//
// One block = 64 queries of one (b, h), 4 warps × 16 query rows. For each tile of 64 keys: S = Q·Kᵀ
// on tensor cores, masking (causal, key padding, T), online softmax in the exp2 domain with the
// running max m and sum l per row, O = O·α + P·V with P kept in registers. T×T is never stored.
// K and V tiles are double-buffered: cp.async fetches tile j+1 while the warps work on tile j.
// At the end O /= l and lse = (m + log2 l)·ln2 (natural log, as the contract and the CPU reference).
// A row with no visible key keeps m = -inf, l = 0 and writes O = 0, lse = -inf.
#include "kernels/attention.h"
#include "kernels/cuda/attention_tiles.cuh"

namespace ferry::kernels::cuda {

namespace {

using namespace attention;

constexpr int kBr = 64;  // queries per block
constexpr int kBc = 64;  // keys per tile
constexpr int kWarps = kBr / 16;

template <int HS>
constexpr size_t forward_smem() {
  return sizeof(__nv_bfloat16) * (size_t(kBr) + 4 * size_t(kBc)) * (HS + kPad);  // Q, 2 × (K, V)
}

template <int HS>
__global__ void __launch_bounds__(kWarps * 32)
    attention_forward_kernel(__nv_bfloat16* out, float* lse, const __nv_bfloat16* qkv, const int32_t* key_lengths,
                             int Tn, int NH, bool causal) {
  extern __shared__ __align__(16) unsigned char smem[];
  __nv_bfloat16* q_s = reinterpret_cast<__nv_bfloat16*>(smem);
  // Buffer j & 1 of the K, V tiles: kv_s + (2·(j & 1) + {0 for K, 1 for V})·tile.
  __nv_bfloat16* kv_s = q_s + kBr * (HS + kPad);
  constexpr int kTile = kBc * (HS + kPad);

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const TileIndex tile = tile_index((Tn + kBr - 1) / kBr, causal);
  const int q_tile = tile.tile;
  const int bh = tile.bh, b = bh / NH, h = bh % NH;
  const int C = NH * HS;
  const size_t row_stride = size_t(3) * C;
  const __nv_bfloat16* q_base = qkv + size_t(b) * Tn * row_stride + h * HS;
  const __nv_bfloat16* k_base = q_base + C;
  const __nv_bfloat16* v_base = q_base + 2 * C;
  const int q0 = q_tile * kBr;
  const float scale_log2 = rsqrtf(static_cast<float>(HS)) * kLog2e;

  const int kv_len = key_limit(key_lengths, b, Tn);
  const int kv_end = causal ? min(kv_len, q0 + kBr) : kv_len;
  const int row_a = q0 + warp * 16 + g, row_b = row_a + 8;  // the two query rows this thread holds

  float o[HS / 8][4];
#pragma unroll
  for (int n = 0; n < HS / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m_a = -INFINITY, m_b = -INFINITY, l_a = 0.0f, l_b = 0.0f;

  // Q and the first K, V tile in one group.
  load_tile_async<kBr, HS>(q_s, q_base, row_stride, q0, Tn);
  if (kv_end > 0) {
    load_tile_async<kBc, HS>(kv_s, k_base, row_stride, 0, Tn);
    load_tile_async<kBc, HS>(kv_s + kTile, v_base, row_stride, 0, Tn);
  }
  cp_async_commit();
  uint32_t qa[HS / 16][4];

  for (int k0 = 0, j = 0; k0 < kv_end; k0 += kBc, ++j) {
    if (k0 + kBc < kv_end) {
      // The buffer being filled was last read in iteration j - 1, which ended with a barrier.
      __nv_bfloat16* next = kv_s + 2 * ((j + 1) & 1) * kTile;
      load_tile_async<kBc, HS>(next, k_base, row_stride, k0 + kBc, Tn);
      load_tile_async<kBc, HS>(next + kTile, v_base, row_stride, k0 + kBc, Tn);
      cp_async_commit();
      cp_async_wait<1>();  // everything but the tile just issued has landed (for this thread)
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();  // ... and for every thread
    if (j == 0) {
#pragma unroll
      for (int dk = 0; dk < HS / 16; ++dk) load_a(qa[dk], q_s, HS + kPad, warp * 16, dk * 16, lane);
    }
    const __nv_bfloat16* k_s = kv_s + 2 * (j & 1) * kTile;
    const __nv_bfloat16* v_s = k_s + kTile;

    float s[kBc / 8][4];
#pragma unroll
    for (int n = 0; n < kBc / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
    for (int dk = 0; dk < HS / 16; ++dk) {
#pragma unroll
      for (int n = 0; n < kBc / 8; n += 2) {
        uint32_t kb0[2], kb1[2];
        load_b_x2(kb0, kb1, k_s, HS + kPad, n * 8, dk * 16, lane);
        mma_bf16_16816(s[n], qa[dk], kb0);
        mma_bf16_16816(s[n + 1], qa[dk], kb1);
      }
    }

    float mx_a = -INFINITY, mx_b = -INFINITY;
#pragma unroll
    for (int n = 0; n < kBc / 8; ++n) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int key = k0 + n * 8 + 2 * t + (i & 1);
        const int row = i < 2 ? row_a : row_b;
        const bool visible = key < kv_len && (!causal || key <= row);
        s[n][i] = visible ? s[n][i] * scale_log2 : -INFINITY;
      }
      mx_a = fmaxf(mx_a, fmaxf(s[n][0], s[n][1]));
      mx_b = fmaxf(mx_b, fmaxf(s[n][2], s[n][3]));
    }
    // The four threads of a quad hold one row's columns.
    mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, 1));
    mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, 2));
    mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, 1));
    mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, 2));
    const float mn_a = fmaxf(m_a, mx_a), mn_b = fmaxf(m_b, mx_b);
    // A row with nothing visible so far subtracts 0, so exp2(-inf - 0) = 0 and no NaN appears.
    const float base_a = mn_a == -INFINITY ? 0.0f : mn_a;
    const float base_b = mn_b == -INFINITY ? 0.0f : mn_b;
    const float alpha_a = exp2f(m_a - base_a), alpha_b = exp2f(m_b - base_b);
    m_a = mn_a;
    m_b = mn_b;
    float sum_a = 0.0f, sum_b = 0.0f;
#pragma unroll
    for (int n = 0; n < kBc / 8; ++n) {
      s[n][0] = exp2f(s[n][0] - base_a);
      s[n][1] = exp2f(s[n][1] - base_a);
      s[n][2] = exp2f(s[n][2] - base_b);
      s[n][3] = exp2f(s[n][3] - base_b);
      sum_a += s[n][0] + s[n][1];
      sum_b += s[n][2] + s[n][3];
    }
    l_a = l_a * alpha_a + sum_a;  // per-thread partial; the quad's partials are summed at the end
    l_b = l_b * alpha_b + sum_b;
#pragma unroll
    for (int n = 0; n < HS / 8; ++n) {
      o[n][0] *= alpha_a;
      o[n][1] *= alpha_a;
      o[n][2] *= alpha_b;
      o[n][3] *= alpha_b;
    }
#pragma unroll
    for (int kk = 0; kk < kBc / 16; ++kk) {
      uint32_t pa[4];
      c_to_a(pa, s[2 * kk], s[2 * kk + 1]);
#pragma unroll
      for (int n = 0; n < HS / 8; n += 2) {
        uint32_t vb0[2], vb1[2];
        load_b_trans_x2(vb0, vb1, v_s, HS + kPad, kk * 16, n * 8, lane);
        mma_bf16_16816(o[n], pa, vb0);
        mma_bf16_16816(o[n + 1], pa, vb1);
      }
    }
    __syncthreads();  // this buffer is refilled in iteration j + 1
  }
  cp_async_wait<0>();  // no copy outlives the block (nothing to wait for when the loop ran)

  l_a += __shfl_xor_sync(0xffffffffu, l_a, 1);
  l_a += __shfl_xor_sync(0xffffffffu, l_a, 2);
  l_b += __shfl_xor_sync(0xffffffffu, l_b, 1);
  l_b += __shfl_xor_sync(0xffffffffu, l_b, 2);
  const float inv_a = l_a > 0.0f ? 1.0f / l_a : 0.0f;
  const float inv_b = l_b > 0.0f ? 1.0f / l_b : 0.0f;
  __nv_bfloat16* out_base = out + size_t(b) * Tn * C + h * HS;
#pragma unroll
  for (int n = 0; n < HS / 8; ++n) {
    const int d = n * 8 + 2 * t;
    if (row_a < Tn)
      *reinterpret_cast<uint32_t*>(out_base + size_t(row_a) * C + d) = pack_bf16(o[n][0] * inv_a, o[n][1] * inv_a);
    if (row_b < Tn)
      *reinterpret_cast<uint32_t*>(out_base + size_t(row_b) * C + d) = pack_bf16(o[n][2] * inv_b, o[n][3] * inv_b);
  }
  if (t == 0) {
    float* lse_base = lse + size_t(bh) * Tn;
    if (row_a < Tn) lse_base[row_a] = l_a > 0.0f ? (m_a + log2f(l_a)) * kLn2 : -INFINITY;
    if (row_b < Tn) lse_base[row_b] = l_b > 0.0f ? (m_b + log2f(l_b)) * kLn2 : -INFINITY;
  }
}

template <int HS>
void launch_forward(bf16* out, float* lse, const bf16* qkv, const int32_t* key_lengths, int B, int Tn, int NH,
                    bool causal, cudaStream_t stream) {
  constexpr size_t smem = forward_smem<HS>();
  static bool configured = false;  // the attribute is per function; setting it once suffices
  if (!configured) {
    set_smem(reinterpret_cast<const void*>(attention_forward_kernel<HS>), smem);
    configured = true;
  }
  const dim3 grid = tile_grid(static_cast<int>(ceil_div(Tn, kBr)), B * NH);
  attention_forward_kernel<HS><<<grid, kWarps * 32, smem, stream>>>(dev(out), lse, dev(qkv), key_lengths, Tn, NH,
                                                                    causal);
  FERRY_CUDA_CHECK_LAUNCH(HS == 64 ? "attention_forward_kernel<64>" : "attention_forward_kernel<128>");
}

}  // namespace

void attention_forward(bf16* out, float* lse, const bf16* qkv, const int32_t* key_lengths, int B, int Tn, int NH,
                       int HS, bool causal, cudaStream_t stream) {
  FERRY_CUDA_REQUIRE(HS == 64 || HS == 128, "HS=" + std::to_string(HS));
  if (B == 0 || Tn == 0 || NH == 0) return;
  if (HS == 64)
    launch_forward<64>(out, lse, qkv, key_lengths, B, Tn, NH, causal, stream);
  else
    launch_forward<128>(out, lse, qkv, key_lengths, B, Tn, NH, causal, stream);
}

}  // namespace ferry::kernels::cuda
