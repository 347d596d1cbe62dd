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

// Vocabulary-parallel cross-entropy (tensor parallelism): this rank's logits [N, ld] hold classes
// [vocab_start, vocab_start + valid) of the whole vocabulary (valid ≤ ld; 0 when the shard is all
// padding). Three passes; between them the caller all-reduces the statistics over the group:
//   1 row_max[n] = max over the row's valid columns (-inf when valid = 0)       → all-reduce max
//   2 sums[2n]   = Σ_v exp(logits[n,v] - row_max[n]) over the valid columns,
//     sums[2n+1] = logits[n, targets[n] - vocab_start] when the target is in this shard and not
//                  ignored, else 0                                              → all-reduce sum
//   3 losses[n] = row_max[n] + log(sums[2n]) - sums[2n+1] (0 on ignored rows); dlogits (nullable,
//     may alias logits) = scale · (softmax - onehot) / n_valid on the valid columns, 0 on the
//     padding columns and ignored rows; returns (CPU) / writes (CUDA) Σ losses / n_valid.
//     label_count (CPU: ≥ 0 when given; CUDA: a device i32, nullable): data parallelism's global
//     count of labelled rows, of which these N rows are a share; it replaces n_valid (0 when it is 0),
//     so the ranks' losses and gradients sum to one process's, as cross_entropy's label_count.
template <typename T>
void vocab_parallel_cross_entropy_row_max(T* row_max, const T* logits, int N, int valid, int ld);
template <typename T>
void vocab_parallel_cross_entropy_sums(T* sums, const T* logits, const int32_t* targets, const T* row_max, int N,
                                       int valid, int ld, int vocab_start, int32_t ignore_index);
template <typename T>
T vocab_parallel_cross_entropy_finish(T* losses, T* dlogits, const T* logits, const int32_t* targets, const T* row_max,
                                      const T* sums, int N, int valid, int ld, int vocab_start, T scale,
                                      int32_t ignore_index, int64_t label_count = -1);

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
// label_count (device i32, nullable): data parallelism's global count of labelled rows, of which
// these N rows are a share; the mean and dlogits then divide by it instead of this call's n_valid
// (Σ losses / label_count: summed over the ranks, one process's mean; 0 when it is 0).
size_t cross_entropy_workspace_bytes();
void cross_entropy_forward_backward(float* losses, float* loss_mean, bf16* dlogits, const bf16* logits,
                                    const int32_t* targets, int N, int V, int ld, float scale, int32_t ignore_index,
                                    void* workspace, size_t workspace_bytes, cudaStream_t stream,
                                    const int32_t* label_count = nullptr);

// The vocabulary-parallel passes (contract above): bf16 logits and dlogits, fp32 statistics
// (row_max [N], sums [2N]), losses and mean; one block per row for each pass, fixed-order block
// reductions (no atomics). workspace: cross_entropy_workspace_bytes (1/n_valid), used by the finish.
void vocab_parallel_cross_entropy_row_max(float* row_max, const bf16* logits, int N, int valid, int ld,
                                          cudaStream_t stream);
void vocab_parallel_cross_entropy_sums(float* sums, const bf16* logits, const int32_t* targets, const float* row_max,
                                       int N, int valid, int ld, int vocab_start, int32_t ignore_index,
                                       cudaStream_t stream);
void vocab_parallel_cross_entropy_finish(float* losses, float* loss_mean, bf16* dlogits, const bf16* logits,
                                         const int32_t* targets, const float* row_max, const float* sums, int N,
                                         int valid, int ld, int vocab_start, float scale, int32_t ignore_index,
                                         void* workspace, size_t workspace_bytes, cudaStream_t stream,
                                         const int32_t* label_count = nullptr);

}  // namespace ferry::kernels::cuda
