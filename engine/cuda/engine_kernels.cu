// engine/cuda/engine_kernels.cu — see engine_kernels.h.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>

#include "engine/cuda/engine_kernels.h"
#include "kernels/cuda_check.h"

namespace ferry::gpu {

namespace {

constexpr int kMaxHead = 128;
constexpr int kThreads = 128;

__device__ __forceinline__ float ld(const bf16* p) { return __bfloat162float(*reinterpret_cast<const __nv_bfloat16*>(p)); }
__device__ __forceinline__ void st(bf16* p, float x) { *reinterpret_cast<__nv_bfloat16*>(p) = __float2bfloat16_rn(x); }

__global__ void f32_to_bf16_kernel(bf16* dst, const float* src, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    st(dst + i, src[i]);
}

__global__ void bf16_to_f32_kernel(float* dst, const bf16* src, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    dst[i] = ld(src + i);
}

// Keys a query row sees: [0, visible(t)).
__device__ __forceinline__ int visible(int t, int Tn, const int32_t* key_lengths, int b, bool causal) {
  int n = causal ? t + 1 : Tn;
  if (key_lengths && key_lengths[b] < n) n = key_lengths[b] < 0 ? 0 : key_lengths[b];
  return n;
}

struct Layout {
  int B, Tn, NH, HS;
  __device__ size_t q(int b, int t, int h) const { return (size_t(b) * Tn + t) * 3 * NH * HS + size_t(h) * HS; }
  __device__ size_t k(int b, int t, int h) const { return q(b, t, h) + size_t(NH) * HS; }
  __device__ size_t v(int b, int t, int h) const { return q(b, t, h) + 2 * size_t(NH) * HS; }
  __device__ size_t o(int b, int t, int h) const { return (size_t(b) * Tn + t) * NH * HS + size_t(h) * HS; }
  __device__ size_t row(int b, int h, int t) const { return (size_t(b) * NH + h) * Tn + t; }
};

__global__ void attention_forward_plain_kernel(bf16* out, float* lse, const bf16* qkv, const int32_t* key_lengths,
                                               Layout L, bool causal, float scale) {
  const int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= L.B * L.NH * L.Tn) return;
  const int t = idx % L.Tn, h = (idx / L.Tn) % L.NH, b = idx / (L.Tn * L.NH);
  const int ns = visible(t, L.Tn, key_lengths, b, causal);
  float acc[kMaxHead];
  for (int d = 0; d < L.HS; ++d) acc[d] = 0.0f;
  const bf16* q = qkv + L.q(b, t, h);
  float mx = -INFINITY, sum = 0.0f;
  for (int s = 0; s < ns; ++s) {  // online softmax, keys in ascending order
    const bf16* k = qkv + L.k(b, s, h);
    float dot = 0.0f;
    for (int d = 0; d < L.HS; ++d) dot += ld(q + d) * ld(k + d);
    dot *= scale;
    const float m_new = fmaxf(mx, dot);
    const float corr = expf(mx - m_new), p = expf(dot - m_new);
    sum = sum * corr + p;
    const bf16* v = qkv + L.v(b, s, h);
    for (int d = 0; d < L.HS; ++d) acc[d] = acc[d] * corr + p * ld(v + d);
    mx = m_new;
  }
  bf16* o = out + L.o(b, t, h);
  if (ns == 0) {
    for (int d = 0; d < L.HS; ++d) st(o + d, 0.0f);
    lse[L.row(b, h, t)] = -INFINITY;
    return;
  }
  for (int d = 0; d < L.HS; ++d) st(o + d, acc[d] / sum);
  lse[L.row(b, h, t)] = mx + logf(sum);
}

// D[row] = Σ_d dout·out: the softmax backward's per-row correction.
__global__ void attention_dot_kernel(float* D, const bf16* dout, const bf16* out, Layout L) {
  const int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= L.B * L.NH * L.Tn) return;
  const int t = idx % L.Tn, h = (idx / L.Tn) % L.NH, b = idx / (L.Tn * L.NH);
  float s = 0.0f;
  for (int d = 0; d < L.HS; ++d) s += ld(dout + L.o(b, t, h) + d) * ld(out + L.o(b, t, h) + d);
  D[L.row(b, h, t)] = s;
}

__global__ void attention_dq_kernel(bf16* dqkv, const bf16* dout, const bf16* qkv, const float* lse, const float* D,
                                    const int32_t* key_lengths, Layout L, bool causal, float scale) {
  const int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= L.B * L.NH * L.Tn) return;
  const int t = idx % L.Tn, h = (idx / L.Tn) % L.NH, b = idx / (L.Tn * L.NH);
  const int ns = visible(t, L.Tn, key_lengths, b, causal);
  float dq[kMaxHead];
  for (int d = 0; d < L.HS; ++d) dq[d] = 0.0f;
  const bf16* q = qkv + L.q(b, t, h);
  const bf16* go = dout + L.o(b, t, h);
  const float l = lse[L.row(b, h, t)], Dt = D[L.row(b, h, t)];
  for (int s = 0; s < ns; ++s) {
    const bf16* k = qkv + L.k(b, s, h);
    const bf16* v = qkv + L.v(b, s, h);
    float dot = 0.0f, dp = 0.0f;
    for (int d = 0; d < L.HS; ++d) {
      dot += ld(q + d) * ld(k + d);
      dp += ld(go + d) * ld(v + d);
    }
    const float ds = expf(dot * scale - l) * (dp - Dt) * scale;
    for (int d = 0; d < L.HS; ++d) dq[d] += ds * ld(k + d);
  }
  bf16* out = dqkv + L.q(b, t, h);
  for (int d = 0; d < L.HS; ++d) st(out + d, dq[d]);
}

__global__ void attention_dkv_kernel(bf16* dqkv, const bf16* dout, const bf16* qkv, const float* lse, const float* D,
                                     const int32_t* key_lengths, Layout L, bool causal, float scale) {
  const int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= L.B * L.NH * L.Tn) return;
  const int s = idx % L.Tn, h = (idx / L.Tn) % L.NH, b = idx / (L.Tn * L.NH);
  float dk[kMaxHead], dv[kMaxHead];
  for (int d = 0; d < L.HS; ++d) dk[d] = dv[d] = 0.0f;
  const bf16* k = qkv + L.k(b, s, h);
  const bf16* v = qkv + L.v(b, s, h);
  for (int t = causal ? s : 0; t < L.Tn; ++t) {  // queries in ascending order
    if (s >= visible(t, L.Tn, key_lengths, b, causal)) continue;
    const bf16* q = qkv + L.q(b, t, h);
    const bf16* go = dout + L.o(b, t, h);
    float dot = 0.0f, dp = 0.0f;
    for (int d = 0; d < L.HS; ++d) {
      dot += ld(q + d) * ld(k + d);
      dp += ld(go + d) * ld(v + d);
    }
    const float p = expf(dot * scale - lse[L.row(b, h, t)]);
    const float ds = p * (dp - D[L.row(b, h, t)]) * scale;
    for (int d = 0; d < L.HS; ++d) {
      dv[d] += p * ld(go + d);
      dk[d] += ds * ld(q + d);
    }
  }
  bf16* gk = dqkv + L.k(b, s, h);
  bf16* gv = dqkv + L.v(b, s, h);
  for (int d = 0; d < L.HS; ++d) {
    st(gk + d, dk[d]);
    st(gv + d, dv[d]);
  }
}

unsigned blocks_for(size_t n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

// The kernels index rows (b, h, t) with an int.
void require_int_rows(size_t rows) {
  FERRY_CUDA_REQUIRE(rows <= size_t(2147483647), "B·NH·T = " + std::to_string(rows) +
                                                     " rows exceed the plain attention's int row index");
}

}  // namespace

void convert_f32_to_bf16(bf16* dst, const float* src, size_t n, cudaStream_t stream) {
  if (n == 0) return;
  const unsigned blocks = static_cast<unsigned>(std::min<size_t>((n + 255) / 256, 4096));
  f32_to_bf16_kernel<<<blocks, 256, 0, stream>>>(dst, src, n);
  FERRY_CUDA_CHECK_LAUNCH("f32_to_bf16_kernel");
}

void convert_bf16_to_f32(float* dst, const bf16* src, size_t n, cudaStream_t stream) {
  if (n == 0) return;
  const unsigned blocks = static_cast<unsigned>(std::min<size_t>((n + 255) / 256, 4096));
  bf16_to_f32_kernel<<<blocks, 256, 0, stream>>>(dst, src, n);
  FERRY_CUDA_CHECK_LAUNCH("bf16_to_f32_kernel");
}

void attention_forward_plain(bf16* out, float* lse, const bf16* qkv, const int32_t* key_lengths, int B, int Tn,
                             int NH, int HS, bool causal, cudaStream_t stream) {
  FERRY_CUDA_REQUIRE(HS >= 1 && HS <= kMaxHead, "plain attention takes head sizes up to 128");
  const Layout L{B, Tn, NH, HS};
  const size_t rows = size_t(B) * NH * Tn;
  require_int_rows(rows);
  attention_forward_plain_kernel<<<blocks_for(rows), kThreads, 0, stream>>>(out, lse, qkv, key_lengths, L, causal,
                                                                            1.0f / sqrtf(float(HS)));
  FERRY_CUDA_CHECK_LAUNCH("attention_forward_plain_kernel");
}

size_t attention_backward_plain_workspace_bytes(int B, int Tn, int NH) { return size_t(B) * NH * Tn * sizeof(float); }

void attention_backward_plain(bf16* dqkv, const bf16* dout, const bf16* qkv, const bf16* out, const float* lse,
                              const int32_t* key_lengths, int B, int Tn, int NH, int HS, bool causal,
                              void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  FERRY_CUDA_REQUIRE(HS >= 1 && HS <= kMaxHead, "plain attention takes head sizes up to 128");
  FERRY_CUDA_REQUIRE(workspace_bytes >= attention_backward_plain_workspace_bytes(B, Tn, NH), "workspace too small");
  const Layout L{B, Tn, NH, HS};
  const size_t rows = size_t(B) * NH * Tn;
  require_int_rows(rows);
  const float scale = 1.0f / sqrtf(float(HS));
  float* D = static_cast<float*>(workspace);
  attention_dot_kernel<<<blocks_for(rows), kThreads, 0, stream>>>(D, dout, out, L);
  FERRY_CUDA_CHECK_LAUNCH("attention_dot_kernel");
  attention_dq_kernel<<<blocks_for(rows), kThreads, 0, stream>>>(dqkv, dout, qkv, lse, D, key_lengths, L, causal,
                                                                 scale);
  FERRY_CUDA_CHECK_LAUNCH("attention_dq_kernel");
  attention_dkv_kernel<<<blocks_for(rows), kThreads, 0, stream>>>(dqkv, dout, qkv, lse, D, key_lengths, L, causal,
                                                                  scale);
  FERRY_CUDA_CHECK_LAUNCH("attention_dkv_kernel");
}

}  // namespace ferry::gpu
