// engine/cuda/cuda_context.h — the CUDA backend's concrete type, for the CUDA-aware files of
// engine/cuda/ only (it needs cuda_runtime.h; compile it under FERRY_WITH_CUDA).
#pragma once
#include <cuda_runtime.h>

#include <memory>

#include "engine/backend.h"
#include "engine/workspace.h"
#include "engine/attention_choice.h"
#include "kernels/cuda/attention_cudnn.h"
#include "kernels/matmul.h"

namespace ferry::gpu {

class CudaBackend final : public Backend {
 public:
  CudaBackend();
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  Device device() const override { return Device::CUDA; }
  std::string name() const override { return "cuda"; }
  void* allocate(size_t bytes) override;
  void release(void* p) override;
  // Queued on the stream. A pageable source may be reused as soon as this returns (the driver
  // stages it before returning); the destination is written in stream order.
  void upload(void* dst, const void* host_src, size_t bytes) override;
  // Waits for the stream: the host buffer holds the data on return.
  void download(void* host_dst, const void* src, size_t bytes) override;
  void zero(void* p, size_t bytes) override;
  void synchronize() override;
  // Free device memory when the backend started: what this run may allocate.
  size_t capacity() const override { return capacity_; }

  cudaStream_t stream() const { return stream_; }
  kernels::cuda::Matmul& matmul() { return *matmul_; }
  const cudaDeviceProp& properties() const { return prop_; }

  // Scratch for the kernels that need it (engine/workspace.h): the backend's shared block, or the
  // one a captured step installed for its own work, so that nothing frees memory a captured graph
  // points at. No workspace grows while a step is being captured.
  void* workspace(size_t bytes) { return workspaces_.get(bytes); }
  WorkspaceRouter& workspaces() { return workspaces_; }
  void set_capturing(bool on) { workspaces_.set_capturing(on); }
  bool capturing() const { return workspaces_.capturing(); }

  // Which attention kernels run (engine/attention_choice.h: choose_attention); cuDNN's object and
  // its plan cache are made on first use.
  void select_attention(const std::string& requested) override;
  bool uses_cudnn_attention() const { return attention_ == AttentionBackend::Cudnn; }
  kernels::cuda::CudnnAttention& cudnn_attention();

 private:
  cudaDeviceProp prop_{};
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<kernels::cuda::Matmul> matmul_;
  WorkspaceRouter workspaces_{*this};
  size_t capacity_ = 0;
  AttentionBackend attention_ = AttentionBackend::Ferry;
  std::unique_ptr<kernels::cuda::CudnnAttention> cudnn_;
};

// The CUDA backend behind a Backend reference (an internal error when it is another backend).
CudaBackend& cuda_backend(Backend& b);

// Attaches the CUDA kernel of every op that has one (engine/cuda/cuda_ops.cpp); idempotent.
void attach_cuda_kernels();

}  // namespace ferry::gpu
