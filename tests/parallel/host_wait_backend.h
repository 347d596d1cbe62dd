// tests/parallel/host_wait_backend.h — the CPU backend with its host waits (download, synchronize)
// reported, for the tests that check a step issues no host wait between its collectives
// (dp_schedule_test, tp_schedule_mpi_test).
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "engine/backend.h"

namespace ferry::test {

class HostWaitBackend final : public Backend {
 public:
  // on_wait(what, pointer waited on or null, bytes).
  using OnWait = std::function<void(const std::string& what, const void* ptr, size_t bytes)>;
  explicit HostWaitBackend(OnWait on_wait) : cpu_(make_cpu_backend()), on_wait_(std::move(on_wait)) {}
  Device device() const override { return cpu_->device(); }
  std::string name() const override { return "recording"; }
  void* allocate(size_t bytes) override { return cpu_->allocate(bytes); }
  void release(void* p) override { cpu_->release(p); }
  void upload(void* dst, const void* src, size_t bytes) override { cpu_->upload(dst, src, bytes); }
  void download(void* dst, const void* src, size_t bytes) override {
    on_wait_("backend download", src, bytes);
    cpu_->download(dst, src, bytes);
  }
  void zero(void* p, size_t bytes) override { cpu_->zero(p, bytes); }
  void synchronize() override { on_wait_("backend synchronize", nullptr, 0); }
  size_t capacity() const override { return cpu_->capacity(); }

 private:
  std::unique_ptr<Backend> cpu_;
  OnWait on_wait_;
};

}  // namespace ferry::test
