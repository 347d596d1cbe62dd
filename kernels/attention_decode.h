// kernels/attention_decode.h — incremental (KV-cache) attention for decoding: one new query row per
// sequence against the keys and values cached for that sequence so far.
//
// Cache layout, per layer: k_cache and v_cache [B, NH, Tmax, HS] (each head's keys contiguous in
// position order, so one query reads one contiguous block per head). `lengths[b]` counts the cached
// positions of sequence b that the new query sees — the new token's own key and value included,
// appended first by kv_cache_append.
//
// The B query rows may be any subset of the cache's rows (finished sequences drop out of a batch):
// query row b uses cache row cache_rows[b] (null: cache row b).
//
// Contract:
//   kv_cache_append: for each b, K and V of qkv row b ([B, 3C], llm.c's Q|K|V layout) are written to
//     position positions[b] of cache row cache_rows[b]; nothing else is touched (a position outside
//     [0, Tmax) writes nothing).
//   attention_decode: out [B, C] written; out[b] = softmax(q_b · Kᵀ / √HS) · V over positions
//     [0, lengths[b]) of cache row cache_rows[b], head by head; q_b is the Q part of qkv row b.
//     lengths[b] ≤ 0 gives 0.
// The arithmetic is that of the full-sequence reference (kernels/cpu/attention.cpp) for one query
// row: same dot order, max-subtracted exponentials and log-sum-exp normalization, so decoding with a
// cache reproduces full recomputation up to the matmuls' rounding.
#pragma once
#include <cstdint>

namespace ferry::kernels::cpu {

template <typename T>
void kv_cache_append(T* k_cache, T* v_cache, const T* qkv, const int32_t* cache_rows, const int32_t* positions, int B,
                     int NH, int HS, int Tmax);

template <typename T>
void attention_decode(T* out, const T* qkv, const T* k_cache, const T* v_cache, const int32_t* cache_rows,
                      const int32_t* lengths, int B, int NH, int HS, int Tmax);

}  // namespace ferry::kernels::cpu
