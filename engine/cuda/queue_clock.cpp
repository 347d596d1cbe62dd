// engine/cuda/queue_clock.cpp
#include "engine/cuda/queue_clock.h"

#include <algorithm>
#include <chrono>
#include <random>

#include "base/error.h"
#include "kernels/dtype.h"
#include "kernels/matmul.h"

#if FERRY_WITH_CUDA
#include "engine/cuda/cuda_context.h"
#include "kernels/cuda_check.h"
#endif

namespace ferry {

namespace {
double median(std::vector<double> v) {
  FERRY_CHECK(!v.empty(), "median of nothing");
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
}  // namespace

struct QueueClock::Impl {
  Backend& backend;
  std::vector<std::chrono::steady_clock::time_point> host_marks;
#if FERRY_WITH_CUDA
  std::vector<cudaEvent_t> events;
  size_t used = 0;
#endif
  explicit Impl(Backend& b) : backend(b) {}
  ~Impl() {
#if FERRY_WITH_CUDA
    for (cudaEvent_t e : events) cudaEventDestroy(e);
#endif
  }
};

QueueClock::QueueClock(Backend& b) : impl_(std::make_unique<Impl>(b)) {}
QueueClock::~QueueClock() = default;

void QueueClock::mark() {
#if FERRY_WITH_CUDA
  if (impl_->backend.device() == Device::CUDA) {
    if (impl_->used == impl_->events.size()) {
      cudaEvent_t e = nullptr;
      FERRY_CUDA_CHECK(cudaEventCreate(&e));
      impl_->events.push_back(e);
    }
    FERRY_CUDA_CHECK(cudaEventRecord(impl_->events[impl_->used++], gpu::cuda_backend(impl_->backend).stream()));
    return;
  }
#endif
  impl_->host_marks.push_back(std::chrono::steady_clock::now());
}

std::vector<double> QueueClock::intervals_ms() {
  std::vector<double> out;
#if FERRY_WITH_CUDA
  if (impl_->backend.device() == Device::CUDA) {
    impl_->backend.synchronize();
    for (size_t i = 1; i < impl_->used; ++i) {
      float ms = 0;
      FERRY_CUDA_CHECK(cudaEventElapsedTime(&ms, impl_->events[i - 1], impl_->events[i]));
      out.push_back(ms);
    }
    impl_->used = 0;
    return out;
  }
#endif
  const auto& m = impl_->host_marks;
  for (size_t i = 1; i < m.size(); ++i) out.push_back(std::chrono::duration<double, std::milli>(m[i] - m[i - 1]).count());
  impl_->host_marks.clear();
  return out;
}

MatmulCeiling measure_matmul_ceiling(Backend& b) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
#if FERRY_WITH_CUDA
  if (b.device() == Device::CUDA) {
    gpu::CudaBackend& cb = gpu::cuda_backend(b);
    constexpr int n = 8192;
    const size_t elems = size_t(n) * n;
    DeviceBuffer a(b, elems * sizeof(bf16)), w(b, elems * sizeof(bf16)), out(b, elems * sizeof(bf16));
    // Random operands (zeros would flatter the rate: tensor cores draw less power on them): one
    // random block uploaded, then tiled on the device.
    constexpr size_t block = size_t(1) << 20;
    std::vector<bf16> host(block);
    for (auto& x : host) x = float_to_bf16(dist(rng));
    for (DeviceBuffer* buf : {&a, &w}) {
      b.upload(buf->data(), host.data(), block * sizeof(bf16));
      for (size_t off = block; off < elems; off += block)
        FERRY_CUDA_CHECK(cudaMemcpyAsync(static_cast<bf16*>(buf->data()) + off, buf->data(),
                                         std::min(block, elems - off) * sizeof(bf16), cudaMemcpyDeviceToDevice,
                                         cb.stream()));
    }
    auto run = [&] {
      cb.matmul().forward(static_cast<bf16*>(out.data()), nullptr, static_cast<const bf16*>(a.data()),
                          static_cast<const bf16*>(w.data()), nullptr, n, n, n, cb.stream());
    };
    for (int i = 0; i < 3; ++i) run();
    QueueClock clock(b);
    std::vector<double> ms;
    for (int i = 0; i < 10; ++i) {
      clock.mark();
      run();
      clock.mark();
      ms.push_back(clock.intervals_ms()[0]);
    }
    return {2.0 * n * double(n) * n / (median(ms) * 1e-3) / 1e12,
            "kernels::cuda::Matmul 8192x8192x8192 bf16, median of 10"};
  }
#endif
  constexpr int n = 512;
  std::vector<float> a(size_t(n) * n), w(a.size()), out(a.size());
  for (auto& x : a) x = dist(rng);
  for (auto& x : w) x = dist(rng);
  std::vector<double> ms;
  for (int i = 0; i < 6; ++i) {  // the first call starts the thread pool: not counted
    const auto t0 = std::chrono::steady_clock::now();
    kernels::cpu::matmul_forward<float>(out.data(), a.data(), w.data(), nullptr, n, n, n);
    const auto t1 = std::chrono::steady_clock::now();
    if (i > 0) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  // The fastest of five: on a shared host the median carries other processes' load, and a ceiling
  // below what the model's own matmuls reach would put MFU above 1.
  const double best = *std::min_element(ms.begin(), ms.end());
  return {2.0 * n * double(n) * n / (best * 1e-3) / 1e12, "CPU reference GEMM 512x512x512 fp32, fastest of 5"};
}

size_t device_memory_in_use(Backend& b) {
#if FERRY_WITH_CUDA
  if (b.device() == Device::CUDA) {
    size_t free_bytes = 0, total_bytes = 0;
    FERRY_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    return total_bytes - free_bytes;
  }
#endif
  (void)b;
  return 0;
}

}  // namespace ferry
