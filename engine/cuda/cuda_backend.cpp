// engine/cuda/cuda_backend.cpp
#include "engine/cuda/cuda_backend.h"

#include "engine/device.h"
#include "base/error.h"
#include "base/setting_error.h"

#if FERRY_WITH_CUDA
#include "engine/cuda/cuda_context.h"
#include "engine/planner.h"
#include "kernels/cuda_check.h"
#endif

namespace ferry {

#if FERRY_WITH_CUDA

namespace gpu {

CudaBackend::CudaBackend() {
  FERRY_CUDA_CHECK(cudaSetDevice(0));
  FERRY_CUDA_CHECK(cudaGetDeviceProperties(&prop_, 0));
  FERRY_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  matmul_ = std::make_unique<kernels::cuda::Matmul>();
  size_t free_bytes = 0, total_bytes = 0;
  FERRY_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  capacity_ = free_bytes;
  attach_cuda_kernels();
}

void CudaBackend::select_attention(const std::string& requested) {
  attention_ = choose_attention(requested);
}

kernels::cuda::CudnnAttention& CudaBackend::cudnn_attention() {
  if (!cudnn_) cudnn_ = std::make_unique<kernels::cuda::CudnnAttention>();
  return *cudnn_;
}

CudaBackend::~CudaBackend() {
  // No throwing from a destructor: errors here are reported by whatever call failed first.
  if (stream_) cudaStreamSynchronize(stream_);
  workspaces_.release_shared();
  cudnn_.reset();
  matmul_.reset();
  if (stream_) cudaStreamDestroy(stream_);
}

void* CudaBackend::allocate(size_t bytes) {
  void* p = nullptr;
  const cudaError_t err = cudaMalloc(&p, bytes);
  if (err != cudaSuccess) {
    cudaGetLastError();
    size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    user_error("cannot allocate ", format_bytes(double(bytes)), " on ", prop_.name, " (",
               format_bytes(double(free_bytes)), " free of ", format_bytes(double(total_bytes)),
               "): ", cudaGetErrorString(err), "; lower batch_size or seq_len");
  }
  return p;
}

void CudaBackend::release(void* p) {
  if (p) cudaFree(p);  // implicitly waits for work that may still read it
}

void CudaBackend::upload(void* dst, const void* src, size_t n) {
  if (n) FERRY_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, stream_));
}

void CudaBackend::download(void* dst, const void* src, size_t n) {
  if (!n) return;
  FERRY_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, stream_));
  FERRY_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaBackend::zero(void* p, size_t n) {
  if (n) FERRY_CUDA_CHECK(cudaMemsetAsync(p, 0, n, stream_));
}

void CudaBackend::synchronize() { FERRY_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

CudaBackend& cuda_backend(Backend& b) {
  FERRY_CHECK(b.device() == Device::CUDA, "a CUDA kernel ran on the ", b.name(), " backend");
  return static_cast<CudaBackend&>(b);
}

}  // namespace gpu

bool cuda_backend_built() { return true; }

std::unique_ptr<Backend> make_cuda_backend() {
  if (cuda_device_count() == 0) setting_error("device", "cuda: ", device_summary());
  return std::make_unique<gpu::CudaBackend>();
}

#else

bool cuda_backend_built() { return false; }

std::unique_ptr<Backend> make_cuda_backend() {
  setting_error("device", "cuda: this ferry was built without CUDA (no nvcc at configure time); the cpu device runs here");
}

#endif

}  // namespace ferry
