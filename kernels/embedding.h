// kernels/embedding.h — token + position embedding.
//
// Contract (B batch rows, T positions, C channels, V vocabulary):
//   forward:  out[b,t,:] = wte[tokens[b,t], :] + wpe[t, :]          out [B,T,C] written
//   backward: dwte[tokens[b,t], :] += dout[b,t,:]                     dwte [V,C] accumulated
//             dwpe[t, :]           += sum_b dout[b,t,:]               dwpe [maxT,C] accumulated
// Token ids must lie in [0, V); the caller (data loader) guarantees it. Summation order is fixed
// (b, then t ascending) so that the result is bitwise reproducible.
#pragma once
#include <cstdint>

namespace ferry::kernels::cpu {

template <typename T>
void embedding_forward(T* out, const int32_t* tokens, const T* wte, const T* wpe, int B, int Tn, int C);

// dwte or dwpe may be null (frozen parameter).
template <typename T>
void embedding_backward(T* dwte, T* dwpe, const T* dout, const int32_t* tokens, int B, int Tn, int C, int V);

// Vocabulary-parallel embedding (tensor parallelism): this rank holds rows [vocab_start,
// vocab_start + rows) of the token table, wte_shard [rows, C]; a token outside them contributes 0
// (another rank's shard adds it, tp_reduce sums the ranks). wpe is nullable (no positions).
//   forward:  out[b,t,:] = (in shard ? wte_shard[tokens[b,t] - vocab_start, :] : 0) + wpe[t, :]
//   backward: dwte_shard[tokens[b,t] - vocab_start, :] += dout[b,t,:] for tokens in the shard;
//             dwpe as above. Either output nullable. Summation in (b, t) order.
template <typename T>
void vocab_parallel_embedding_forward(T* out, const int32_t* tokens, const T* wte_shard, const T* wpe, int B, int Tn,
                                      int C, int vocab_start, int rows);
template <typename T>
void vocab_parallel_embedding_backward(T* dwte_shard, T* dwpe, const T* dout, const int32_t* tokens, int B, int Tn,
                                       int C, int vocab_start, int rows);

}  // namespace ferry::kernels::cpu

// CUDA twins: every pointer is device memory; work is queued on `stream`, never synchronized.
// cudaStream_t declared exactly as cuda_runtime.h does, so host code needs no CUDA headers.
#include <cstddef>
#include <cstdint>

#include "kernels/dtype.h"
struct CUstream_st;
typedef CUstream_st* cudaStream_t;

namespace ferry::kernels::cuda {

// bf16 storage, same contract as above. Launches on `stream`, never synchronizes.
void embedding_forward(bf16* out, const int32_t* tokens, const bf16* wte, const bf16* wpe, int B, int Tn, int C,
                       cudaStream_t stream);

// Deterministic backward without float atomics: token positions are sorted by token id (stable, so
// each id's positions stay in ascending (b, t) order, the CPU reference's order); each run of one id
// is summed in fp32 in chunks of 32 positions (one block each), the chunks combined in order, and
// the sum added into dwte once. dwpe[t] is summed over b in order by one thread per channel group.
// Needs `workspace` of embedding_backward_workspace_bytes (device memory, no allocation inside: the
// call can be captured in a CUDA graph). C % 8 == 0.
size_t embedding_backward_workspace_bytes(int B, int Tn, int C, int V);
void embedding_backward(bf16* dwte, bf16* dwpe, const bf16* dout, const int32_t* tokens, int B, int Tn, int C, int V,
                        void* workspace, size_t workspace_bytes, cudaStream_t stream);

// The vocabulary-parallel forward (contract above), bf16, fp32 sum of the two rows; wpe nullable.
// C % 8 == 0.
void vocab_parallel_embedding_forward(bf16* out, const int32_t* tokens, const bf16* wte_shard, const bf16* wpe, int B,
                                      int Tn, int C, int vocab_start, int rows, cudaStream_t stream);
// The vocabulary-parallel backward: the deterministic sort-based backward above over local ids
// (tokens outside the shard become a marker id that adds to no row). dwte_shard or dwpe nullable.
// Needs vocab_parallel_embedding_backward_workspace_bytes of workspace (none without dwte_shard).
size_t vocab_parallel_embedding_backward_workspace_bytes(int B, int Tn, int C, int rows);
void vocab_parallel_embedding_backward(bf16* dwte_shard, bf16* dwpe, const bf16* dout, const int32_t* tokens, int B,
                                       int Tn, int C, int vocab_start, int rows, void* workspace,
                                       size_t workspace_bytes, cudaStream_t stream);

}  // namespace ferry::kernels::cuda
