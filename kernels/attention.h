// kernels/attention.h — multi-head scaled-dot-product self-attention.
//
// Layout (llm.c's): qkv [B, T, 3·C] holds, per position, Q then K then V, each [NH, HS] with
// C = NH·HS. out [B, T, C] is the heads concatenated. lse [B, NH, T] is the log-sum-exp of each
// query row's scaled scores (what a flash-style backward needs to rebuild the probabilities).
//
// Masking: `causal` lets query t see keys s ≤ t. `key_lengths` (nullable, [B]) marks keys
// s ≥ key_lengths[b] as padding, never attended to (right-padded fine-tuning batches). A query row
// with no visible key gets out = 0 and lse = -inf, and contributes no gradient.
//
// Contract:
//   forward:  out, lse written.
//   backward: dqkv [B,T,3C] written, from dout, qkv, out and lse (probabilities recomputed).
// Scale 1/√HS.
#pragma once
#include <cstdint>

namespace ferry::kernels::cpu {

template <typename T>
void attention_forward(T* out, T* lse, const T* qkv, const int32_t* key_lengths, int B, int Tn, int NH, int HS,
                       bool causal);

template <typename T>
void attention_backward(T* dqkv, const T* dout, const T* qkv, const T* out, const T* lse,
                        const int32_t* key_lengths, int B, int Tn, int NH, int HS, bool causal);

}  // namespace ferry::kernels::cpu

// CUDA twins: every pointer is device memory; work is queued on `stream`, never synchronized.
// cudaStream_t declared exactly as cuda_runtime.h does, so host code needs no CUDA headers.
#include <cstddef>
#include <cstdint>

#include "kernels/dtype.h"
struct CUstream_st;
typedef CUstream_st* cudaStream_t;

namespace ferry::kernels::cuda {

// Flash-style (FlashAttention-2 structure): tiles of queries against tiles of keys on bf16 tensor
// cores (mma.sync m16n8k16, fp32 accumulators), online softmax, T×T never stored. HS ∈ {64, 128};
// any Tn ≥ 1; layout as above; lse fp32 [B, NH, Tn].
void attention_forward(bf16* out, float* lse, const bf16* qkv, const int32_t* key_lengths, int B, int Tn, int NH,
                       int HS, bool causal, cudaStream_t stream);

// Deterministic backward, no atomics: (1) D = rowsum(dout ∘ out) into `workspace`; (2) one block
// per key tile owns dK, dV and walks the query tiles; (3) one block per query tile owns dQ and walks
// the key tiles (recomputing P and dP, the price of not accumulating dQ with atomics).
// dqkv fully written. workspace: attention_backward_workspace_bytes.
size_t attention_backward_workspace_bytes(int B, int Tn, int NH);
void attention_backward(bf16* dqkv, const bf16* dout, const bf16* qkv, const bf16* out, const float* lse,
                        const int32_t* key_lengths, int B, int Tn, int NH, int HS, bool causal, void* workspace,
                        size_t workspace_bytes, cudaStream_t stream);

}  // namespace ferry::kernels::cuda
