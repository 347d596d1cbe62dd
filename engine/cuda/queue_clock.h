// engine/cuda/queue_clock.h — timing work queued on a backend, and the figures a throughput
// benchmark divides by. One interface for both backends so that `ferry bench train` and its CPU
// test run the same code: on the CUDA backend marks are CUDA events recorded on the backend's
// stream (the device's own clock, no host round trip between them); on the CPU backend, whose work
// is done when a call returns, they are steady-clock readings.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend.h"

namespace ferry {

class QueueClock {
 public:
  explicit QueueClock(Backend& b);
  ~QueueClock();
  QueueClock(const QueueClock&) = delete;
  QueueClock& operator=(const QueueClock&) = delete;

  // A timestamp at this point of the backend's queue.
  void mark();
  // Waits for the queue, then milliseconds between consecutive marks (marks − 1 values), and clears.
  std::vector<double> intervals_ms();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct MatmulCeiling {
  double tflops = 0;  // measured dense-matmul rate
  std::string what;   // how it was measured, for the report
};
// Measured now on this backend: kernels::cuda::Matmul on 8192×8192×8192 bf16 (median of 10, after
// warm-up) on CUDA; the CPU reference GEMM on 512×512×512 fp32 (fastest of 5) on the CPU.
MatmulCeiling measure_matmul_ceiling(Backend& b);

// Device memory in use now (total − free, the CUDA context included); 0 on the CPU backend. With
// every buffer of a run allocated up front, this after a step is the run's peak.
size_t device_memory_in_use(Backend& b);

}  // namespace ferry
