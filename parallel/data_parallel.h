// parallel/data_parallel.h — data parallelism: every DP rank runs the whole step on its slice of
// the global batch, and the gradients are summed over the DP group in buckets as backward produces
// them.
//
// A bucket is a range of the flat gradient buffer in its storage order (about `bucket_elems`
// elements, cut at parameter boundaries, alignment gaps included). Backward walks the layers in
// reverse and parameters are laid out forward, so the buckets at the end of the buffer are
// complete first.
//
// The reduction of one step is data, a DpSchedule: the buckets and the list of operations to issue,
// each tagged with the backward node after which it is issued (-1: after backward). For bucket k,
// after the node that writes the last contribution to it (its last writer):
//   record  compute E_k     (everything backward issued so far, the bucket's gradients included)
//   wait    comm    E_k
//   widen   comm    k       (bf16 → the fp32 reduce buffer on CUDA; in place on the CPU)
//   all_reduce      k       (the DP communicator; on a device communicator, on the comm stream)
//   narrow  comm    k
// and after backward: the buckets nothing writes (frozen parameters, so that every rank takes part
// in the same collectives) the same way, then `record comm D`, `wait compute D`: the norm and the
// optimizer run after every bucket is back. No operation waits on the host, so on CUDA with a
// device communicator (NCCL) the schedule is captured inside the step graph and the buckets are
// reduced on the second stream while the rest of backward runs (tests/parallel/
// dp_schedule_test.cpp checks the order and the absence of host waits with recording queues and a
// recording communicator). On the CPU (HostQueues) the same operations run at once, in issue order.
// Sums are the communicator's rank-ordered ones: every DP rank ends with bitwise equal gradients.
// Each rank's loss carries 1/(dp·micro-batches), so the sum is the gradient of the global mean.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "engine/graph.h"
#include "engine/train/step_queues.h"
#include "parallel/communicator.h"

namespace ferry::parallel {

struct GradientBucket {
  size_t begin = 0, size = 0;  // elements of the flat gradient buffer (storage order)
  int last_writer = -1;        // backward node index; -1: nothing writes it
};

enum class DpOpKind { record, wait, widen, all_reduce, narrow };

struct DpOp {
  int after_node = -1;  // the backward node it is issued after; -1: after backward
  DpOpKind kind = DpOpKind::record;
  Queue queue = Queue::compute;
  int index = 0;  // the event (record, wait) or the bucket (widen, all_reduce, narrow)
};

struct DpSchedule {
  std::vector<GradientBucket> buckets;  // storage order
  std::vector<DpOp> ops;                // issue order: nodes ascending, then the ops after backward
  int done_event = 0;                   // the comm stream's last event (= buckets.size())
};

// Buckets over params [0, n_params) of g (the model's; received pipeline activations excluded).
DpSchedule make_dp_schedule(const Graph& g, int n_params, size_t bucket_elems);

// "after node 42: wait comm E3", for test messages.
std::string to_string(const DpOp& op);

// Runs a DpSchedule for one step: begin_step() before the last micro-batch's backward, on_node()
// after each of its nodes, finish() after it.
class GradientBuckets {
 public:
  GradientBuckets(const Graph& g, int n_params, size_t bucket_elems, Communicator& dp);

  const DpSchedule& schedule() const { return s_; }
  void begin_step(GradientQueues& queues);
  void on_node(int node);  // issue the operations tagged with `node`
  void finish();           // issue the rest
  size_t bucket_count() const { return s_.buckets.size(); }
  // Buckets whose all-reduce was issued while backward was still running, last step.
  int reduced_during_backward() const { return reduced_early_; }
  // The hooks a device step calls (engine/train/step_queues.h).
  GradientHooks hooks();

 private:
  void issue(const DpOp& op, bool early);
  DpSchedule s_;
  Communicator& dp_;
  GradientQueues* queues_ = nullptr;
  size_t next_ = 0;
  std::vector<float*> widened_;
  int reduced_early_ = 0;
};

// The CPU's queues: fp32 gradients reduced in place, everything done when issued.
class HostQueues final : public GradientQueues {
 public:
  explicit HostQueues(float* grads) : grads_(grads) {}
  void record(Queue, int) override {}
  void wait(Queue, int) override {}
  float* widen(size_t begin, size_t) override { return grads_ + begin; }
  void narrow(size_t, size_t) override {}

 private:
  float* grads_;
};

}  // namespace ferry::parallel
