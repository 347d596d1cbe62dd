// kernels/cross_entropy.h — fused softmax + cross-entropy over the vocabulary, forward and
// backward in one pass, probabilities never stored.
//
// Contract (N rows of `ld` columns, the first V of which are classes; V ≤ ld):
//   losses[n] = logsumexp(logits[n, :V]) - logits[n, targets[n]]     written; 0 where ignored
//   returns (CPU) / writes (CUDA) the mean over rows whose target != ignore_index (0 when none).
//   When dlogits is non-null (same row stride ld):
//     dlogits[n,v] = scale · (softmax(logits[n,:V])[v] - [v == targets[n]]) / n_valid   for v < V
//     dlogits[n,v] = 0 for V ≤ v < ld, and on ignored rows. dlogits may alias logits (in place).
//   Columns V..ld-1 of logits are never read: a vocabulary padded to a multiple of 128 (the LM
//   head's rows beyond the real ones, engine/model/gpt.h) neither enters the loss nor gets a gradient.
// Targets outside [0, V) other than ignore_index are a caller error.
#pragma once
#include <cstdint>

namespace ferry::kernels::cpu {

template <typename T>
T cross_entropy_forward_backward(T* losses, T* dlogits, const T* logits, const int32_t* targets, int N, int V, int ld,
                                 T scale, int32_t ignore_index);

}  // namespace ferry::kernels::cpu

// CUDA twins: every pointer is device memory; work is queued on `stream`, never synchronized.
// cudaStream_t declared exactly as cuda_runtime.h does, so host code needs no CUDA headers.
#include <cstddef>
#include <cstdint>

#include "kernels/dtype.h"
struct CUstream_st;
typedef CUstream_st* cudaStream_t;

namespace ferry::kernels::cuda {

// bf16 logits [N, ld] (V classes), fp32 losses [N] and fp32 mean (*loss_mean, on the device: no
// host round trip). dlogits (bf16, nullable, may alias logits) as in the contract. One block per
// row: pass 1 online max/sum over the row's V classes, pass 2 writes dlogits (the re-read comes
// from L2) and zeroes its padding columns. workspace: cross_entropy_workspace_bytes (holds
// 1/n_valid between launches).
size_t cross_entropy_workspace_bytes();
void cross_entropy_forward_backward(float* losses, float* loss_mean, bf16* dlogits, const bf16* logits,
                                    const int32_t* targets, int N, int V, int ld, float scale, int32_t ignore_index,
                                    void* workspace, size_t workspace_bytes, cudaStream_t stream);

}  // namespace ferry::kernels::cuda
