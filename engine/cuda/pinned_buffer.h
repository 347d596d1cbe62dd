// engine/cuda/pinned_buffer.h — page-locked host memory (cudaMallocHost), seen from host code that
// needs no CUDA headers: the only kind of host memory a copy can overlap with the stream from, and
// the staging area of every host round trip a step makes (the device step's batches and results,
// the runner's DP sum through a host communicator). Grows on reserve(), never shrinks, freed with
// the object; reused across steps instead of allocated per call.
#pragma once
#include <cstddef>

namespace ferry::gpu {

class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer();
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  // At least `bytes` (contents not kept when it grows). A build without CUDA: an internal error.
  void reserve(size_t bytes);
  size_t size() const { return bytes_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace ferry::gpu
