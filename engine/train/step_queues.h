// engine/train/step_queues.h — the two queues a training step's device work runs on, seen by the
// code that issues collectives into the step (parallel/data_parallel.h, parallel/device_collectives.h)
// without device headers.
//
//   compute   the backend's stream: forward, backward, the norm and the optimizer
//   comm      a device communicator's stream: gradient buckets widened, reduced and narrowed; the
//             tensor-parallel all-reduces and the gradient norm's sum
//
// Work on one queue runs in the order it was issued; between the queues only events order it.
// Nothing here waits on the host, so everything issued through it can be captured in one CUDA
// graph (a capture forks onto `comm` at its first wait and joins back at the last one).
//
// Events are named by numbers, made by an implementation as they are first named. A record of an
// event that was recorded before replaces it: a wait orders against the latest record issued before
// it (eager or captured), so an event can be reused from one collective to the next. Numbers ≥ 0
// belong to a step's schedule (the DP buckets: 0 … buckets); negative numbers are reserved for
// single collectives, each forked onto `comm` and joined back with the two below (parallel/
// device_collectives.h: issue_all_reduce; the ZeRO-1 shard's collectives, engine/cuda/
// device_shard.h), so one queues object could carry both without a clash.
//
// Implementations: CUDA streams and events (engine/cuda/stream_queues.h, the CUDA device step's
// GradientQueues in engine/cuda/device_step.cpp); the CPU runs everything at once, in issue order
// (ImmediateQueues below, parallel/data_parallel.h: HostQueues); tests record them.
#pragma once
#include <cstddef>
#include <functional>

namespace ferry {

enum class Queue { compute, comm };

inline const char* queue_name(Queue q) { return q == Queue::compute ? "compute" : "comm"; }

// A single collective: record compute kCollectiveFork, wait comm kCollectiveFork, the collective on
// comm, record comm kCollectiveJoin, wait compute kCollectiveJoin. Reused by every call: each wait
// orders against the record just before it.
constexpr int kCollectiveFork = -1;
constexpr int kCollectiveJoin = -2;

class StepQueues {
 public:
  virtual ~StepQueues() = default;
  // Event `event` marks the work issued on `q` so far.
  virtual void record(Queue q, int event) = 0;
  // Work issued on `q` after this runs after the work `event` marked.
  virtual void wait(Queue q, int event) = 0;
};

// Queues whose work is done when it is issued (the CPU backend, a host communicator): nothing to order.
class ImmediateQueues final : public StepQueues {
 public:
  void record(Queue, int) override {}
  void wait(Queue, int) override {}
};

// The queues of the DP gradient reduction: the two queues, and the conversion of the flat gradient
// buffer into what the communicator sums.
class GradientQueues : public StepQueues {
 public:
  // Elements [begin, begin + count) of the flat gradient buffer (storage order), as fp32, issued on
  // `comm`: returns where they are (the CUDA step widens its bf16 gradients into an fp32 reduce
  // buffer at the same offsets; fp32 gradients are returned in place).
  virtual float* widen(size_t begin, size_t count) = 0;
  // Writes widened elements back into the gradient buffer, issued on `comm` (bf16: rounded once).
  virtual void narrow(size_t begin, size_t count) = 0;
};

// What a device step calls to reduce its gradients inside the step (a device communicator):
// `begin` before the last micro-batch's backward, `after_node` after each of its nodes, `finish`
// after it and before the norm. Every call only issues work.
struct GradientHooks {
  std::function<void(GradientQueues&)> begin;
  std::function<void(int node)> after_node;
  std::function<void()> finish;
  explicit operator bool() const { return static_cast<bool>(begin); }
};

}  // namespace ferry
