// engine/backend.h — a device the executor can run on: memory and copies. Kernels are not here:
// each op carries one function per backend (engine/op.h), so a backend does not know the model and
// the graph does not know the device.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

#include "engine/tensor.h"

namespace ferry {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  virtual std::string name() const = 0;
  virtual void* allocate(size_t bytes) = 0;
  virtual void release(void* p) = 0;
  virtual void upload(void* dst, const void* host_src, size_t bytes) = 0;
  virtual void download(void* host_dst, const void* src, size_t bytes) = 0;
  virtual void zero(void* p, size_t bytes) = 0;
  virtual void synchronize() {}
  // Bytes this backend may hand out in total (physical memory on the CPU, device memory on a GPU).
  virtual size_t capacity() const = 0;
  // The `--attention ferry|cudnn|auto` choice. The CPU has one attention (its reference): it takes
  // ferry and auto and refuses cudnn with one line; the CUDA backend may run cuDNN's.
  virtual void select_attention(const std::string& requested);
};

// Owns one allocation on a backend.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(Backend& b, size_t bytes) : backend_(&b), bytes_(bytes), ptr_(bytes ? b.allocate(bytes) : nullptr) {}
  ~DeviceBuffer() {
    if (ptr_) backend_->release(ptr_);
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept { *this = std::move(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(backend_, o.backend_);
    std::swap(bytes_, o.bytes_);
    std::swap(ptr_, o.ptr_);
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* data() const { return ptr_; }
  size_t size() const { return bytes_; }

 private:
  Backend* backend_ = nullptr;
  size_t bytes_ = 0;
  void* ptr_ = nullptr;
};

std::unique_ptr<Backend> make_cpu_backend();

// What "auto" means for a command. Gpu: the CUDA backend when the build has it and a device answers
// (fine-tuning, evaluation and prediction: every op of their graphs has a CUDA kernel and their
// fp32 graphs run in bf16 there, engine/graph_dtype.h), else the CPU. Cpu: the CPU always (pretraining
// and generation until their paths have run on a GPU; ask for the GPU with "cuda").
enum class AutoDevice { Cpu, Gpu };

// "cpu", "cuda" or "auto" (as `auto_device` says). Prints nothing; see device_summary() for the one
// line a run starts with.
std::unique_ptr<Backend> make_backend(const std::string& which, AutoDevice auto_device = AutoDevice::Cpu);

}  // namespace ferry
