// kernels/cuda/cross_entropy.cu — CUDA twin of kernels/cpu/cross_entropy.cpp (contract in
// kernels/cross_entropy.h).
//
// Three launches, none waiting on the host: (1) one block counts the valid targets and stores
// 1/n_valid; (2) one block per row: pass 1 reads the row's V classes once with 128-bit loads keeping
// a per-thread running (max, Σexp) pair, merged over the block in a fixed tree; pass 2 re-reads them
// (an L2 hit: a row is 100 KB at V = 50257) and writes dlogits, possibly in place, and zeros over
// the row's padding columns [V, ld); (3) one block sums the per-row losses in a fixed order into
// the mean. Probabilities are never stored. With ld a multiple of 8 (the padded vocabulary: 50304)
// every row starts 16-byte aligned and the scalar head below is empty.
#include "kernels/cross_entropy.h"
#include "kernels/cuda/common.cuh"

namespace ferry::kernels::cuda {

namespace {

constexpr int kThreads = 1024;

// label_count (nullable): the global count that replaces this batch's (data parallelism).
__global__ void count_valid_kernel(float* inv_valid, const int32_t* targets, int N, int32_t ignore_index,
                                   const int32_t* label_count) {
  if (label_count) {
    if (threadIdx.x == 0) *inv_valid = *label_count > 0 ? 1.0f / static_cast<float>(*label_count) : 0.0f;
    return;
  }
  __shared__ float scratch[32];
  float count = 0.0f;  // exact in fp32 up to 2^24 rows
  for (int n = threadIdx.x; n < N; n += blockDim.x) count += targets[n] != ignore_index ? 1.0f : 0.0f;
  const float total = block_sum(count, scratch);
  if (threadIdx.x == 0) *inv_valid = total > 0.0f ? 1.0f / total : 0.0f;
}

struct MaxSum {
  float m = -INFINITY;
  float s = 0.0f;
  __device__ void add(float x) {
    if (x > m) {
      s = s * __expf(m - x) + 1.0f;
      m = x;
    } else {
      s += __expf(x - m);
    }
  }
};

// The row's elements before the first 16-byte boundary and after the last are done one by one.
__device__ __forceinline__ void split_row(const __nv_bfloat16* row, int V, int& head, int& n8) {
  const int misalign = static_cast<int>((reinterpret_cast<uintptr_t>(row) & 15u) / 2);
  head = misalign ? min(8 - misalign, V) : 0;
  n8 = (V - head) / 8;
}

__global__ void __launch_bounds__(kThreads)
    cross_entropy_row_kernel(float* losses, __nv_bfloat16* dlogits, const __nv_bfloat16* logits,
                             const int32_t* targets, const float* inv_valid, int V, int ld, float scale,
                             int32_t ignore_index) {
  __shared__ float scratch[32];
  const int n = blockIdx.x;
  const int32_t y = targets[n];
  const __nv_bfloat16* x = logits + size_t(n) * ld;
  __nv_bfloat16* dx = dlogits ? dlogits + size_t(n) * ld : nullptr;
  int head, n8;
  split_row(x, V, head, n8);
  const int tail = head + 8 * n8;
  // The padding columns are never read, so zeroing them first is safe in place too.
  if (dx)
    for (int v = V + threadIdx.x; v < ld; v += blockDim.x) dx[v] = __float2bfloat16_rn(0.0f);
  if (y == ignore_index) {
    if (threadIdx.x == 0) losses[n] = 0.0f;
    if (dx)
      for (int v = threadIdx.x; v < V; v += blockDim.x) dx[v] = __float2bfloat16_rn(0.0f);
    return;
  }
  // Read the target logit before any thread may overwrite it in place (barriers below order it).
  const float target_logit = __bfloat162float(x[y]);

  MaxSum acc;
  for (int i = threadIdx.x; i < n8; i += blockDim.x) {
    const Bf16x8 p = load8(x + head + 8 * i);
    float mx = -INFINITY;
    float f[8];
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      f[k] = __bfloat162float(p.v[k]);
      mx = fmaxf(mx, f[k]);
    }
    const float m_new = fmaxf(acc.m, mx);
    float s = acc.s * __expf(acc.m - m_new);
#pragma unroll
    for (int k = 0; k < 8; ++k) s += __expf(f[k] - m_new);
    acc.m = m_new;
    acc.s = s;
  }
  for (int v = threadIdx.x; v < head; v += blockDim.x) acc.add(__bfloat162float(x[v]));
  for (int v = tail + threadIdx.x; v < V; v += blockDim.x) acc.add(__bfloat162float(x[v]));

  const float row_max = block_max(acc.m, scratch);
  const float mine = acc.s == 0.0f ? 0.0f : acc.s * __expf(acc.m - row_max);
  const float row_sum = block_sum(mine, scratch);  // ends with a barrier-separated read: pass 1 done
  const float lse = row_max + __logf(row_sum);
  if (threadIdx.x == 0) losses[n] = lse - target_logit;
  if (!dx) return;

  const float g = scale * *inv_valid;
  for (int i = threadIdx.x; i < n8; i += blockDim.x) {
    const int v0 = head + 8 * i;
    const Bf16x8 p = load8(x + v0);
    Bf16x8 r;
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      const float prob = __expf(__bfloat162float(p.v[k]) - lse);
      r.v[k] = __float2bfloat16_rn(g * (prob - (v0 + k == y ? 1.0f : 0.0f)));
    }
    store8(dx + v0, r);
  }
  auto scalar = [&](int v) {
    const float prob = __expf(__bfloat162float(x[v]) - lse);
    dx[v] = __float2bfloat16_rn(g * (prob - (v == y ? 1.0f : 0.0f)));
  };
  for (int v = threadIdx.x; v < head; v += blockDim.x) scalar(v);
  for (int v = tail + threadIdx.x; v < V; v += blockDim.x) scalar(v);
}

__global__ void mean_loss_kernel(float* loss_mean, const float* losses, const float* inv_valid, int N) {
  __shared__ float scratch[32];
  float s = 0.0f;
  for (int n = threadIdx.x; n < N; n += blockDim.x) s += losses[n];
  const float total = block_sum(s, scratch);
  if (threadIdx.x == 0) *loss_mean = total * *inv_valid;
}

// ---- vocabulary-parallel passes: one block per row, fixed-order block reductions ----

__global__ void __launch_bounds__(kThreads)
    vp_row_max_kernel(float* row_max, const __nv_bfloat16* logits, int valid, int ld) {
  __shared__ float scratch[32];
  const __nv_bfloat16* x = logits + size_t(blockIdx.x) * ld;
  float m = -INFINITY;
  for (int v = threadIdx.x; v < valid; v += blockDim.x) m = fmaxf(m, __bfloat162float(x[v]));
  const float mx = block_max(m, scratch);
  if (threadIdx.x == 0) row_max[blockIdx.x] = mx;
}

__global__ void __launch_bounds__(kThreads)
    vp_sums_kernel(float* sums, const __nv_bfloat16* logits, const int32_t* targets, const float* row_max, int valid,
                   int ld, int vocab_start, int32_t ignore_index) {
  __shared__ float scratch[32];
  const int n = blockIdx.x;
  const __nv_bfloat16* x = logits + size_t(n) * ld;
  const float mx = row_max[n];
  float s = 0.0f;
  for (int v = threadIdx.x; v < valid; v += blockDim.x) s += __expf(__bfloat162float(x[v]) - mx);
  const float total = block_sum(s, scratch);
  if (threadIdx.x == 0) {
    const int32_t y = targets[n];
    const int local = y - vocab_start;
    sums[2 * n] = total;
    sums[2 * n + 1] = y != ignore_index && local >= 0 && local < valid ? __bfloat162float(x[local]) : 0.0f;
  }
}

// Every element's gradient depends only on itself and the row's statistics: in place is safe.
__global__ void __launch_bounds__(kThreads)
    vp_finish_kernel(float* losses, __nv_bfloat16* dlogits, const __nv_bfloat16* logits, const int32_t* targets,
                     const float* row_max, const float* sums, const float* inv_valid, int valid, int ld,
                     int vocab_start, float scale, int32_t ignore_index) {
  const int n = blockIdx.x;
  const int32_t y = targets[n];
  const bool ignored = y == ignore_index;
  const float lse = ignored ? 0.0f : row_max[n] + __logf(sums[2 * n]);
  if (threadIdx.x == 0) losses[n] = ignored ? 0.0f : lse - sums[2 * n + 1];
  if (!dlogits) return;
  const __nv_bfloat16* x = logits + size_t(n) * ld;
  __nv_bfloat16* dx = dlogits + size_t(n) * ld;
  const float g = scale * *inv_valid;
  const int local = y - vocab_start;
  for (int v = threadIdx.x; v < ld; v += blockDim.x) {
    float d = 0.0f;
    if (!ignored && v < valid) d = g * (__expf(__bfloat162float(x[v]) - lse) - (v == local ? 1.0f : 0.0f));
    dx[v] = __float2bfloat16_rn(d);
  }
}

}  // namespace

void vocab_parallel_cross_entropy_row_max(float* row_max, const bf16* logits, int N, int valid, int ld,
                                          cudaStream_t stream) {
  FERRY_CUDA_REQUIRE(valid >= 0 && ld >= valid, "valid=" + std::to_string(valid) + " ld=" + std::to_string(ld));
  if (N == 0) return;
  vp_row_max_kernel<<<N, kThreads, 0, stream>>>(row_max, dev(logits), valid, ld);
  FERRY_CUDA_CHECK_LAUNCH("vp_row_max_kernel");
}

void vocab_parallel_cross_entropy_sums(float* sums, const bf16* logits, const int32_t* targets, const float* row_max,
                                       int N, int valid, int ld, int vocab_start, int32_t ignore_index,
                                       cudaStream_t stream) {
  FERRY_CUDA_REQUIRE(valid >= 0 && ld >= valid, "valid=" + std::to_string(valid) + " ld=" + std::to_string(ld));
  if (N == 0) return;
  vp_sums_kernel<<<N, kThreads, 0, stream>>>(sums, dev(logits), targets, row_max, valid, ld, vocab_start,
                                             ignore_index);
  FERRY_CUDA_CHECK_LAUNCH("vp_sums_kernel");
}

void vocab_parallel_cross_entropy_finish(float* losses, float* loss_mean, bf16* dlogits, const bf16* logits,
                                         const int32_t* targets, const float* row_max, const float* sums, int N,
                                         int valid, int ld, int vocab_start, float scale, int32_t ignore_index,
                                         void* workspace, size_t workspace_bytes, cudaStream_t stream,
                                         const int32_t* label_count) {
  FERRY_CUDA_REQUIRE(workspace_bytes >= cross_entropy_workspace_bytes(), "workspace too small");
  FERRY_CUDA_REQUIRE(valid >= 0 && ld >= valid, "valid=" + std::to_string(valid) + " ld=" + std::to_string(ld));
  float* inv_valid = static_cast<float*>(workspace);
  count_valid_kernel<<<1, kThreads, 0, stream>>>(inv_valid, targets, N, ignore_index, label_count);
  FERRY_CUDA_CHECK_LAUNCH("count_valid_kernel");
  if (N > 0) {
    vp_finish_kernel<<<N, kThreads, 0, stream>>>(losses, dev(dlogits), dev(logits), targets, row_max, sums,
                                                 inv_valid, valid, ld, vocab_start, scale, ignore_index);
    FERRY_CUDA_CHECK_LAUNCH("vp_finish_kernel");
  }
  if (loss_mean) {
    mean_loss_kernel<<<1, kThreads, 0, stream>>>(loss_mean, losses, inv_valid, N);
    FERRY_CUDA_CHECK_LAUNCH("mean_loss_kernel");
  }
}

size_t cross_entropy_workspace_bytes() { return 256; }

void cross_entropy_forward_backward(float* losses, float* loss_mean, bf16* dlogits, const bf16* logits,
                                    const int32_t* targets, int N, int V, int ld, float scale, int32_t ignore_index,
                                    void* workspace, size_t workspace_bytes, cudaStream_t stream,
                                    const int32_t* label_count) {
  FERRY_CUDA_REQUIRE(workspace_bytes >= cross_entropy_workspace_bytes(), "workspace too small");
  FERRY_CUDA_REQUIRE(V > 0 && ld >= V, "V=" + std::to_string(V) + " ld=" + std::to_string(ld));
  float* inv_valid = static_cast<float*>(workspace);
  count_valid_kernel<<<1, kThreads, 0, stream>>>(inv_valid, targets, N, ignore_index, label_count);
  FERRY_CUDA_CHECK_LAUNCH("count_valid_kernel");
  if (N > 0) {
    cross_entropy_row_kernel<<<N, kThreads, 0, stream>>>(losses, dev(dlogits), dev(logits), targets, inv_valid, V,
                                                         ld, scale, ignore_index);
    FERRY_CUDA_CHECK_LAUNCH("cross_entropy_row_kernel");
  }
  if (loss_mean) {
    mean_loss_kernel<<<1, kThreads, 0, stream>>>(loss_mean, losses, inv_valid, N);
    FERRY_CUDA_CHECK_LAUNCH("mean_loss_kernel");
  }
}

}  // namespace ferry::kernels::cuda
