// engine/cuda/engine_kernels.h — the few device kernels the CUDA backend needs besides kernels/:
// precision conversion (the fp32 master weights, the fp32 DP reduce buffer), and a plain attention for head sizes the
// flash kernels do not take (tiny test models: 16 or 32 channels per head). Declared without CUDA
// headers; every pointer is device memory and launches are queued on `stream`.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/dtype.h"
struct CUstream_st;
typedef CUstream_st* cudaStream_t;

namespace ferry::gpu {

// dst[i] = bf16(src[i]), round to nearest even.
void convert_f32_to_bf16(bf16* dst, const float* src, size_t n, cudaStream_t stream);
// dst[i] = float(src[i]), exact (the DP reduce buffer: bf16 gradients summed in fp32).
void convert_bf16_to_f32(float* dst, const bf16* src, size_t n, cudaStream_t stream);

// Plain attention with the contract of kernels/attention.h (lse fp32, key lengths, causal or not):
// one thread per query row (forward, dQ) or key row (dK, dV), fp32 arithmetic, a fixed loop order
// and no atomics, so results are reproducible. O(T²·HS) per head with no tiling: meant for the
// small head sizes of test models (HS ≤ 128), not for speed.
void attention_forward_plain(bf16* out, float* lse, const bf16* qkv, const int32_t* key_lengths, int B, int Tn,
                             int NH, int HS, bool causal, cudaStream_t stream);
size_t attention_backward_plain_workspace_bytes(int B, int Tn, int NH);
void attention_backward_plain(bf16* dqkv, const bf16* dout, const bf16* qkv, const bf16* out, const float* lse,
                              const int32_t* key_lengths, int B, int Tn, int NH, int HS, bool causal,
                              void* workspace, size_t workspace_bytes, cudaStream_t stream);

}  // namespace ferry::gpu
