// kernels/cuda/embedding.cu — CUDA twin of kernels/cpu/embedding.cpp (contract in kernels/embedding.h).
//
// Backward without float atomics: the (token id, position) pairs are radix-sorted by id with a
// stable sort (CUB), so each id's positions stay in ascending (b, t) order — the CPU reference's
// summation order. The first position of each run of one id owns that id's dwte row: its block sums
// the run's dout rows in fp32 and adds the sum into dwte once. Bitwise reproducible run to run.
#include <cub/device/device_radix_sort.cuh>

#include "kernels/cuda/common.cuh"
#include "kernels/embedding.h"

namespace ferry::kernels::cuda {

namespace {

constexpr int kThreads = 128;

__global__ void embedding_forward_kernel(__nv_bfloat16* out, const int32_t* tokens, const __nv_bfloat16* wte,
                                         const __nv_bfloat16* wpe, int BT, int Tn, int C8) {
  const size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (i >= size_t(BT) * C8) return;
  const int bt = static_cast<int>(i / C8), c = static_cast<int>(i % C8) * 8, t = bt % Tn;
  const size_t C = size_t(C8) * 8;
  const Bf16x8 te = load8(wte + size_t(tokens[bt]) * C + c);
  const Bf16x8 pe = load8(wpe + size_t(t) * C + c);
  Bf16x8 r;
#pragma unroll
  for (int k = 0; k < 8; ++k) r.v[k] = __float2bfloat16_rn(__bfloat162float(te.v[k]) + __bfloat162float(pe.v[k]));
  store8(out + size_t(bt) * C + c, r);
}

__global__ void iota_kernel(int32_t* p, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) p[i] = i;
}

// One block per sorted position; only the first position of a run of equal ids does work.
__global__ void embedding_backward_wte_kernel(__nv_bfloat16* dwte, const __nv_bfloat16* dout,
                                              const int32_t* sorted_ids, const int32_t* sorted_pos, int BT, int C8,
                                              int V) {
  const int i = blockIdx.x;
  const int id = sorted_ids[i];
  if (i > 0 && sorted_ids[i - 1] == id) return;
  if (id < 0 || id >= V) return;  // contract violation; never write out of bounds
  int end = i + 1;
  while (end < BT && sorted_ids[end] == id) ++end;
  const size_t C = size_t(C8) * 8;
  for (int c8 = threadIdx.x; c8 < C8; c8 += blockDim.x) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int j = i; j < end; ++j) {
      const Bf16x8 d = load8(dout + size_t(sorted_pos[j]) * C + 8 * c8);
#pragma unroll
      for (int k = 0; k < 8; ++k) acc[k] += __bfloat162float(d.v[k]);
    }
    __nv_bfloat16* g = dwte + size_t(id) * C + 8 * c8;
    Bf16x8 cur = load8(g);
#pragma unroll
    for (int k = 0; k < 8; ++k) cur.v[k] = __float2bfloat16_rn(__bfloat162float(cur.v[k]) + acc[k]);
    store8(g, cur);
  }
}

// One thread per (t, group of 8 channels), summing over b in order.
__global__ void embedding_backward_wpe_kernel(__nv_bfloat16* dwpe, const __nv_bfloat16* dout, int B, int Tn, int C8) {
  const size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (i >= size_t(Tn) * C8) return;
  const int t = static_cast<int>(i / C8), c = static_cast<int>(i % C8) * 8;
  const size_t C = size_t(C8) * 8;
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int b = 0; b < B; ++b) {
    const Bf16x8 d = load8(dout + (size_t(b) * Tn + t) * C + c);
#pragma unroll
    for (int k = 0; k < 8; ++k) acc[k] += __bfloat162float(d.v[k]);
  }
  __nv_bfloat16* g = dwpe + size_t(t) * C + c;
  Bf16x8 cur = load8(g);
#pragma unroll
  for (int k = 0; k < 8; ++k) cur.v[k] = __float2bfloat16_rn(__bfloat162float(cur.v[k]) + acc[k]);
  store8(g, cur);
}

int id_bits(int V) {
  int bits = 1;
  while ((1LL << bits) < V) ++bits;
  return bits;
}

// Workspace layout: sorted ids, positions in, sorted positions (each BT int32, 256-byte aligned),
// then CUB's temporary storage.
size_t align256(size_t x) { return (x + 255) & ~size_t(255); }

size_t cub_temp_bytes(int BT, int V) {
  size_t bytes = 0;
  FERRY_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, bytes, static_cast<const int32_t*>(nullptr),
                                                   static_cast<int32_t*>(nullptr), static_cast<const int32_t*>(nullptr),
                                                   static_cast<int32_t*>(nullptr), BT, 0, id_bits(V)));
  return bytes;
}

}  // namespace

void embedding_forward(bf16* out, const int32_t* tokens, const bf16* wte, const bf16* wpe, int B, int Tn, int C,
                       cudaStream_t stream) {
  FERRY_CUDA_REQUIRE(C % 8 == 0, "C=" + std::to_string(C));
  const int BT = B * Tn, C8 = C / 8;
  if (BT == 0) return;
  embedding_forward_kernel<<<ceil_div(size_t(BT) * C8, 256), 256, 0, stream>>>(dev(out), tokens, dev(wte), dev(wpe),
                                                                              BT, Tn, C8);
  FERRY_CUDA_CHECK_LAUNCH("embedding_forward_kernel");
}

size_t embedding_backward_workspace_bytes(int B, int Tn, int V) {
  const int BT = B * Tn;
  return 3 * align256(sizeof(int32_t) * size_t(BT)) + cub_temp_bytes(BT, V);
}

void embedding_backward(bf16* dwte, bf16* dwpe, const bf16* dout, const int32_t* tokens, int B, int Tn, int C, int V,
                        void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  FERRY_CUDA_REQUIRE(C % 8 == 0, "C=" + std::to_string(C));
  const int BT = B * Tn, C8 = C / 8;
  if (BT == 0) return;
  if (dwpe) {
    embedding_backward_wpe_kernel<<<ceil_div(size_t(Tn) * C8, 256), 256, 0, stream>>>(dev(dwpe), dev(dout), B, Tn, C8);
    FERRY_CUDA_CHECK_LAUNCH("embedding_backward_wpe_kernel");
  }
  if (!dwte) return;
  FERRY_CUDA_REQUIRE(workspace_bytes >= embedding_backward_workspace_bytes(B, Tn, V), "workspace too small");
  char* w = static_cast<char*>(workspace);
  const size_t slot = align256(sizeof(int32_t) * size_t(BT));
  int32_t* sorted_ids = reinterpret_cast<int32_t*>(w);
  int32_t* positions = reinterpret_cast<int32_t*>(w + slot);
  int32_t* sorted_pos = reinterpret_cast<int32_t*>(w + 2 * slot);
  void* temp = w + 3 * slot;
  size_t temp_bytes = workspace_bytes - 3 * slot;
  iota_kernel<<<ceil_div(BT, 256), 256, 0, stream>>>(positions, BT);
  FERRY_CUDA_CHECK_LAUNCH("iota_kernel");
  // LSD radix sort is stable: equal ids keep ascending positions.
  FERRY_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp, temp_bytes, tokens, sorted_ids, positions, sorted_pos, BT, 0,
                                                   id_bits(V), stream));
  embedding_backward_wte_kernel<<<BT, kThreads, 0, stream>>>(dev(dwte), dev(dout), sorted_ids, sorted_pos, BT, C8, V);
  FERRY_CUDA_CHECK_LAUNCH("embedding_backward_wte_kernel");
}

}  // namespace ferry::kernels::cuda
