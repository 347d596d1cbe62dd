// engine/cuda/pinned_buffer.cpp — see pinned_buffer.h.
#include "engine/cuda/pinned_buffer.h"

#include "base/error.h"

#if FERRY_WITH_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda_check.h"
#endif

namespace ferry::gpu {

#if FERRY_WITH_CUDA

PinnedBuffer::~PinnedBuffer() {
  if (ptr_) cudaFreeHost(ptr_);
}

void PinnedBuffer::reserve(size_t bytes) {
  if (bytes <= bytes_) return;
  if (ptr_) FERRY_CUDA_CHECK(cudaFreeHost(ptr_));
  ptr_ = nullptr;
  bytes_ = 0;
  FERRY_CUDA_CHECK(cudaMallocHost(&ptr_, bytes));
  bytes_ = bytes;
}

#else

PinnedBuffer::~PinnedBuffer() = default;

void PinnedBuffer::reserve(size_t bytes) {
  FERRY_CHECK(bytes == 0, "pinned host memory in a build without CUDA");
}

#endif

}  // namespace ferry::gpu
