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
