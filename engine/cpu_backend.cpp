// engine/cpu_backend.cpp
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "engine/backend.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/device.h"
#include "base/error.h"
#include "base/setting_error.h"

namespace ferry {

namespace {

class CpuBackend final : public Backend {
 public:
  Device device() const override { return Device::CPU; }
  std::string name() const override { return "cpu"; }
  void* allocate(size_t bytes) override {
    // 256-byte aligned, as cudaMalloc is: offsets aligned in the buffers (graph.h, planner.h) are
    // aligned pointers.
    void* p = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
    if (!p) user_error("cannot allocate ", bytes, " bytes of host memory");
    return p;
  }
  void release(void* p) override { std::free(p); }
  void upload(void* dst, const void* src, size_t n) override { std::memcpy(dst, src, n); }
  void download(void* dst, const void* src, size_t n) override { std::memcpy(dst, src, n); }
  void zero(void* p, size_t n) override { std::memset(p, 0, n); }
  size_t capacity() const override {
    return static_cast<size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<size_t>(sysconf(_SC_PAGE_SIZE));
  }
};

}  // namespace

void Backend::select_attention(const std::string& requested) {
  if (requested == "ferry" || requested == "auto") return;
  if (requested == "cudnn") setting_error("attention", "cudnn needs the CUDA backend (this run uses the ", name(), " one)");
  setting_error("attention", "'", requested, "' is not one of ferry, cudnn, auto");
}

std::unique_ptr<Backend> make_cpu_backend() { return std::make_unique<CpuBackend>(); }

std::unique_ptr<Backend> make_backend(const std::string& which, AutoDevice auto_device) {
  // "auto" picks the GPU only for the commands whose graphs are known to run there (AutoDevice::Gpu):
  // the CUDA backend runs bf16 graphs and has kernels for the GPT and fine-tuning ops only.
  if (which == "auto") {
    if (auto_device == AutoDevice::Gpu && cuda_device_count() > 0) return make_cuda_backend();
    return make_cpu_backend();
  }
  if (which == "cpu") return make_cpu_backend();
  if (which == "cuda") return make_cuda_backend();
  user_error("unknown device '", which, "' (expected auto, cpu or cuda)");
}

}  // namespace ferry
