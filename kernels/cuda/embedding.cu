// kernels/cuda/embedding.cu — CUDA twin of kernels/cpu/embedding.cpp (contract in kernels/embedding.h).
//
// Backward without float atomics: the (token id, position) pairs are radix-sorted by id with a
// stable sort (CUB), so each id's positions stay in ascending (b, t) order. A run of one id is cut
// into fixed chunks of kChunk sorted positions, counted from the run's start: a run that fits in
// one chunk is summed by one block and added into its dwte row at once; a longer run (real text
// repeats "the" and "," hundreds of times in a batch — Zipf) has each chunk summed by its own
// block into an fp32 partial, and a second launch adds the partials in chunk order. The chunks
// depend only on the sorted ids, the order of every sum is fixed: bitwise reproducible run to run,
// and no thread sums more than kChunk rows (the longest serial chain, not one run's length).
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

// A token outside [vocab_start, vocab_start + rows) reads no table row; wpe may be null.
__global__ void vocab_parallel_embedding_forward_kernel(__nv_bfloat16* out, const int32_t* tokens,
                                                        const __nv_bfloat16* wte, const __nv_bfloat16* wpe, int BT,
                                                        int Tn, int C8, int vocab_start, int rows) {
  const size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  if (i >= size_t(BT) * C8) return;
  const int bt = static_cast<int>(i / C8), c = static_cast<int>(i % C8) * 8, t = bt % Tn;
  const size_t C = size_t(C8) * 8;
  const int row = tokens[bt] - vocab_start;
  float f[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  if (row >= 0 && row < rows) {
    const Bf16x8 te = load8(wte + size_t(row) * C + c);
#pragma unroll
    for (int k = 0; k < 8; ++k) f[k] = __bfloat162float(te.v[k]);
  }
  if (wpe) {
    const Bf16x8 pe = load8(wpe + size_t(t) * C + c);
#pragma unroll
    for (int k = 0; k < 8; ++k) f[k] += __bfloat162float(pe.v[k]);
  }
  Bf16x8 r;
#pragma unroll
  for (int k = 0; k < 8; ++k) r.v[k] = __float2bfloat16_rn(f[k]);
  store8(out + size_t(bt) * C + c, r);
}

__global__ void iota_kernel(int32_t* p, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) p[i] = i;
}

// Sorted positions per chunk; a run longer than this is split. 32 balances the two passes at the
// run lengths of real batches (the commonest GPT-2 token is ~5% of 16k tokens: 800 = 25 chunks).
constexpr int kChunk = 32;

// Partial slots: in each window of kChunk sorted positions at most two chunks of runs longer than
// kChunk begin — one continuing the run that covers the window's first position, one starting a
// run (which then covers the rest of the window). Slot 2·window + (chunk starts its run ? 1 : 0).
__host__ __device__ __forceinline__ int partial_slot(int i, bool run_start) { return 2 * (i / kChunk) + (run_start ? 1 : 0); }
inline int partial_slots(int BT) { return 2 * static_cast<int>(ceil_div(BT, kChunk)); }

// One block per sorted position i; it works when i begins a chunk (its run's start, or kChunk,
// 2·kChunk, … positions into the run): sums the chunk's dout rows in fp32 and adds them into dwte
// when the chunk is the whole run, else stores them in the run's partial slot for the combine.
__global__ void embedding_backward_wte_kernel(__nv_bfloat16* dwte, float* partials, const __nv_bfloat16* dout,
                                              const int32_t* sorted_ids, const int32_t* sorted_pos, int BT, int C8,
                                              int V) {
  const int i = blockIdx.x;
  const int id = sorted_ids[i];
  if (id < 0 || id >= V) return;  // contract violation; never write out of bounds
  const bool run_start = i == 0 || sorted_ids[i - 1] != id;
  int start = i;
  if (!run_start) {
    // Fewer than kChunk positions into the run (the common case) is no chunk start: one load says so.
    if (i < kChunk || sorted_ids[i - kChunk] != id) return;
    int lo = 0, hi = i - kChunk;  // first index of the run: in [0, i - kChunk]
    while (lo < hi) {
      const int mid = (lo + hi) / 2;
      if (sorted_ids[mid] < id) lo = mid + 1; else hi = mid;
    }
    start = lo;
    if ((i - start) % kChunk != 0) return;
  }
  int end = i + 1;
  while (end < BT && end < i + kChunk && sorted_ids[end] == id) ++end;
  const bool whole_run = run_start && (end == BT || sorted_ids[end] != id);
  const size_t C = size_t(C8) * 8;
  for (int c8 = threadIdx.x; c8 < C8; c8 += blockDim.x) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int j = i; j < end; ++j) {
      const Bf16x8 d = load8(dout + size_t(sorted_pos[j]) * C + 8 * c8);
#pragma unroll
      for (int k = 0; k < 8; ++k) acc[k] += __bfloat162float(d.v[k]);
    }
    if (whole_run) {
      __nv_bfloat16* g = dwte + size_t(id) * C + 8 * c8;
      Bf16x8 cur = load8(g);
#pragma unroll
      for (int k = 0; k < 8; ++k) cur.v[k] = __float2bfloat16_rn(__bfloat162float(cur.v[k]) + acc[k]);
      store8(g, cur);
    } else {
      float* p = partials + size_t(partial_slot(i, run_start)) * C + 8 * c8;
      *reinterpret_cast<float4*>(p) = make_float4(acc[0], acc[1], acc[2], acc[3]);
      *reinterpret_cast<float4*>(p + 4) = make_float4(acc[4], acc[5], acc[6], acc[7]);
    }
  }
}

// One block per sorted position; the start of a run longer than kChunk adds its chunks' partials,
// in chunk order, into the id's dwte row.
__global__ void embedding_backward_wte_combine_kernel(__nv_bfloat16* dwte, const float* partials,
                                                      const int32_t* sorted_ids, int BT, int C8, int V) {
  const int i = blockIdx.x;
  const int id = sorted_ids[i];
  if (id < 0 || id >= V) return;
  if (i > 0 && sorted_ids[i - 1] == id) return;
  if (i + kChunk >= BT || sorted_ids[i + kChunk] != id) return;  // a run of ≤ kChunk: done already
  const size_t C = size_t(C8) * 8;
  for (int c8 = threadIdx.x; c8 < C8; c8 += blockDim.x) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int c = i; c < BT && sorted_ids[c] == id; c += kChunk) {
      const float* p = partials + size_t(partial_slot(c, c == i)) * C + 8 * c8;
      const float4 lo = *reinterpret_cast<const float4*>(p), hi = *reinterpret_cast<const float4*>(p + 4);
      acc[0] += lo.x, acc[1] += lo.y, acc[2] += lo.z, acc[3] += lo.w;
      acc[4] += hi.x, acc[5] += hi.y, acc[6] += hi.z, acc[7] += hi.w;
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

// Workspace layout: sorted ids, positions in, sorted positions (each BT int32), the chunk partials
// (partial_slots(BT) × C fp32), each 256-byte aligned, then CUB's temporary storage.
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

void vocab_parallel_embedding_forward(bf16* out, const int32_t* tokens, const bf16* wte_shard, const bf16* wpe, int B,
                                      int Tn, int C, int vocab_start, int rows, cudaStream_t stream) {
  FERRY_CUDA_REQUIRE(C % 8 == 0, "C=" + std::to_string(C));
  const int BT = B * Tn, C8 = C / 8;
  if (BT == 0) return;
  vocab_parallel_embedding_forward_kernel<<<ceil_div(size_t(BT) * C8, 256), 256, 0, stream>>>(
      dev(out), tokens, dev(wte_shard), dev(wpe), BT, Tn, C8, vocab_start, rows);
  FERRY_CUDA_CHECK_LAUNCH("vocab_parallel_embedding_forward_kernel");
}

size_t embedding_backward_workspace_bytes(int B, int Tn, int C, int V) {
  const int BT = B * Tn;
  return 3 * align256(sizeof(int32_t) * size_t(BT)) + align256(sizeof(float) * size_t(partial_slots(BT)) * C) +
         cub_temp_bytes(BT, V);
}

namespace {

// The backward over ids already in [0, V], where id V marks a position that adds to no row (a token
// of another rank's shard): sorted on id_bits(V + 1) bits so the marker never aliases a real id,
// and skipped by the dwte kernels (id >= V). `sort_V` is V for the plain embedding (no marker).
void embedding_backward_ids(bf16* dwte, bf16* dwpe, const bf16* dout, const int32_t* tokens, int B, int Tn, int C,
                            int V, int sort_V, void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  FERRY_CUDA_REQUIRE(C % 8 == 0, "C=" + std::to_string(C));
  const int BT = B * Tn, C8 = C / 8;
  if (BT == 0) return;
  if (dwpe) {
    embedding_backward_wpe_kernel<<<ceil_div(size_t(Tn) * C8, 256), 256, 0, stream>>>(dev(dwpe), dev(dout), B, Tn, C8);
    FERRY_CUDA_CHECK_LAUNCH("embedding_backward_wpe_kernel");
  }
  if (!dwte) return;
  char* w = static_cast<char*>(workspace);
  const size_t slot = align256(sizeof(int32_t) * size_t(BT));
  const size_t partial_bytes = align256(sizeof(float) * size_t(partial_slots(BT)) * C);
  int32_t* sorted_ids = reinterpret_cast<int32_t*>(w);
  int32_t* positions = reinterpret_cast<int32_t*>(w + slot);
  int32_t* sorted_pos = reinterpret_cast<int32_t*>(w + 2 * slot);
  float* partials = reinterpret_cast<float*>(w + 3 * slot);
  void* temp = w + 3 * slot + partial_bytes;
  size_t temp_bytes = workspace_bytes - 3 * slot - partial_bytes;
  iota_kernel<<<ceil_div(BT, 256), 256, 0, stream>>>(positions, BT);
  FERRY_CUDA_CHECK_LAUNCH("iota_kernel");
  // LSD radix sort is stable: equal ids keep ascending positions.
  FERRY_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp, temp_bytes, tokens, sorted_ids, positions, sorted_pos, BT, 0,
                                                   id_bits(sort_V), stream));
  embedding_backward_wte_kernel<<<BT, kThreads, 0, stream>>>(dev(dwte), partials, dev(dout), sorted_ids, sorted_pos,
                                                             BT, C8, V);
  FERRY_CUDA_CHECK_LAUNCH("embedding_backward_wte_kernel");
  embedding_backward_wte_combine_kernel<<<BT, kThreads, 0, stream>>>(dev(dwte), partials, sorted_ids, BT, C8, V);
  FERRY_CUDA_CHECK_LAUNCH("embedding_backward_wte_combine_kernel");
}

__global__ void local_ids_kernel(int32_t* ids, const int32_t* tokens, int n, int vocab_start, int rows) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const int row = tokens[i] - vocab_start;
  ids[i] = row >= 0 && row < rows ? row : rows;
}

}  // namespace

void embedding_backward(bf16* dwte, bf16* dwpe, const bf16* dout, const int32_t* tokens, int B, int Tn, int C, int V,
                        void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  if (dwte)
    FERRY_CUDA_REQUIRE(workspace_bytes >= embedding_backward_workspace_bytes(B, Tn, C, V), "workspace too small");
  embedding_backward_ids(dwte, dwpe, dout, tokens, B, Tn, C, V, V, workspace, workspace_bytes, stream);
}

// Workspace: the local ids (BT int32), then the plain backward's at rows + 1 ids.
size_t vocab_parallel_embedding_backward_workspace_bytes(int B, int Tn, int C, int rows) {
  return align256(sizeof(int32_t) * size_t(B) * Tn) + embedding_backward_workspace_bytes(B, Tn, C, rows + 1);
}

void vocab_parallel_embedding_backward(bf16* dwte_shard, bf16* dwpe, const bf16* dout, const int32_t* tokens, int B,
                                       int Tn, int C, int vocab_start, int rows, void* workspace,
                                       size_t workspace_bytes, cudaStream_t stream) {
  FERRY_CUDA_REQUIRE(C % 8 == 0, "C=" + std::to_string(C));
  const int BT = B * Tn;
  if (BT == 0) return;
  if (!dwte_shard)
    return embedding_backward_ids(nullptr, dwpe, dout, tokens, B, Tn, C, rows, rows + 1, nullptr, 0, stream);
  FERRY_CUDA_REQUIRE(workspace_bytes >= vocab_parallel_embedding_backward_workspace_bytes(B, Tn, C, rows),
                     "workspace too small");
  int32_t* ids = static_cast<int32_t*>(workspace);
  const size_t head = align256(sizeof(int32_t) * size_t(BT));
  local_ids_kernel<<<ceil_div(BT, 256), 256, 0, stream>>>(ids, tokens, BT, vocab_start, rows);
  FERRY_CUDA_CHECK_LAUNCH("local_ids_kernel");
  embedding_backward_ids(dwte_shard, dwpe, dout, ids, B, Tn, C, rows, rows + 1, static_cast<char*>(workspace) + head,
                         workspace_bytes - head, stream);
}

}  // namespace ferry::kernels::cuda
