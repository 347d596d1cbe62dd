// kernels/cuda/attention_cudnn.h — the same attention as kernels/attention.h, computed by cuDNN's
// fused flash attention. The choice between it and ferry's own kernel is engine policy
// (engine/attention_choice.h); this file only says whether cuDNN can run here, and why not.
//
// Contract: exactly kernels/attention.h's CUDA twin — qkv [B, T, 3C] packed (read in place through
// strides, never copied), out [B, T, C], lse [B, NH, T] fp32 (natural-log sum-exp of the scaled
// scores: cuDNN's softmax "stats" are exactly that, so no conversion), dqkv [B, T, 3C] fully
// written, bf16, HS ∈ {64, 128}, scale 1/√HS, causal or bidirectional, key_lengths padding, no
// dropout. Two differences a caller must know:
//   - every key_lengths[b] must be ≥ 1: cuDNN gives no defined result for a row with no visible
//     key (ferry's kernel writes out = 0, lse = -inf there);
//   - the backward is not bitwise reproducible (cuDNN accumulates dQ with atomics), which is why
//     ferry's deterministic kernel stays the default.
//
// How: cuDNN's C backend API (cudnn_graph.h; no frontend library). The forward and the backward
// are operation graphs of matmul, pointwise and reduction nodes in the pattern cuDNN's runtime
// fusion engine recognises as flash attention (cuDNN ≥ 8.9). This is the one form that has causal
// masking and a backward on every cuDNN 9 release we meet: the single-node SDPA descriptors have
// no causal mask before 9.21, and 9.14 (the GPU machine) has no SDPA backward descriptor at all;
// 9.19 has one, but its engines serve Blackwell only. Execution plans are built on first use of a
// (B, T, NH, HS, causal, padded) shape and cached; a build failure throws with cuDNN's status and
// cudnnGetLastErrorString, naming what is unsupported. What cannot run here (no cuDNN in the build,
// the version, the device, the head dim, no engine for the graph) is a UserError, one line starting
// "cuDNN"; the engine adds which setting chose cuDNN.
//
// Every pointer is device memory; work is queued on `stream`, never synchronized (plan building,
// on first use of a shape, does synchronize).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "kernels/dtype.h"
struct CUstream_st;
typedef CUstream_st* cudaStream_t;

namespace ferry::kernels::cuda {

// True when ferry was built against cuDNN (FERRY_WITH_CUDNN).
bool built_with_cudnn();

// Empty when cuDNN attention can run here (forward, and backward when `backward`), else one line
// saying what is missing: no cuDNN in this build, the cuDNN version, the device's compute
// capability, the head dim. Needs a device; never throws.
std::string cudnn_attention_unsupported_reason(int HS, bool backward);

// One line for logs and the benchmark: the cuDNN version found at run time (and the one compiled
// against), whether it declares an SDPA backward descriptor, and which graph ferry builds.
std::string cudnn_attention_summary();

// cudnnGetVersion() at run time; 0 in a build without cuDNN.
long cudnn_runtime_version();

// The current device's name (cudaDeviceProp::name); empty when there is no usable device.
std::string cuda_device_name();

// Builds (and drops) every node of the forward or backward graph for this shape: each tensor,
// matmul, pointwise, reduction and reshape descriptor finalized by cuDNN, which checks their
// attributes and that the shapes fit. Needs no device, so CI checks the graphs cuDNN is given;
// whether an engine fuses them is only known on a GPU. Throws CudaError naming what cuDNN refused.
void check_cudnn_attention_graph(int B, int Tn, int NH, int HS, bool causal, bool padded, bool backward);

// One cuDNN handle and its cache of execution plans. Not thread-safe; one per device and stream
// user, like Matmul. Construction needs a device (it creates the cuDNN handle).
class CudnnAttention {
 public:
  CudnnAttention();
  ~CudnnAttention();
  CudnnAttention(const CudnnAttention&) = delete;
  CudnnAttention& operator=(const CudnnAttention&) = delete;

  // Workspace for one call of this shape (builds and caches the plan if needed). A null workspace
  // in forward/backward makes the object use (and grow) one of its own instead. The backward's
  // fp32 dQ accumulator lives in the workspace; backward zeroes it on the stream before cuDNN adds
  // into it, so a workspace may come with any contents.
  size_t forward_workspace_bytes(int B, int Tn, int NH, int HS, bool causal, bool padded);
  size_t backward_workspace_bytes(int B, int Tn, int NH, int HS, bool causal, bool padded);

  void forward(bf16* out, float* lse, const bf16* qkv, const int32_t* key_lengths, int B, int Tn, int NH, int HS,
               bool causal, void* workspace, size_t workspace_bytes, cudaStream_t stream);
  void backward(bf16* dqkv, const bf16* dout, const bf16* qkv, const bf16* out, const float* lse,
                const int32_t* key_lengths, int B, int Tn, int NH, int HS, bool causal, void* workspace,
                size_t workspace_bytes, cudaStream_t stream);

  // How many execution plans are cached (one per shape and direction): the cache is what keeps a
  // training step from rebuilding plans.
  size_t cached_plans() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry::kernels::cuda
