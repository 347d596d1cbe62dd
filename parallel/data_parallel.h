// parallel/data_parallel.h — data parallelism: every DP rank runs the whole step on its slice of
// the global batch, and the gradients are summed over the DP group in buckets as backward produces
// them.
//
// A bucket is a range of the flat gradient buffer in its storage order (about `bucket_elems`
// elements, cut at parameter boundaries, alignment gaps included). Backward walks the layers in reverse and parameters are laid out forward, so the
// buckets at the end of the buffer are complete first. The executor calls on_node() after every
// node of the last micro-batch's backward; when the node that writes the last contribution to a
// bucket has run, the bucket is all-reduced at once, while the rest of backward is still to come
// (on the CPU the reduction is synchronous; on CUDA it goes to a side stream). finish() reduces
// what no node writes (frozen parameters) so that every rank takes part in the same collectives.
// Sums are the communicator's rank-ordered ones: every DP rank ends with bitwise equal gradients.
// Each rank's loss carries 1/(dp·micro-batches), so the sum is the gradient of the global mean.
#pragma once
#include <cstddef>
#include <vector>

#include "engine/graph.h"
#include "parallel/communicator.h"

namespace ferry::parallel {

class GradientBuckets {
 public:
  // Buckets cover params [0, n_params) of g (the model's; received pipeline activations excluded).
  GradientBuckets(const Graph& g, int n_params, size_t bucket_elems, Communicator& dp);

  void begin_step();                       // every bucket pending again
  void on_node(int node, float* grads);    // reduce the buckets whose last writer is `node`
  void finish(float* grads);               // reduce the buckets still pending, last first
  size_t bucket_count() const { return buckets_.size(); }
  int reduced_during_backward() const { return reduced_early_; }

 private:
  struct Bucket {
    size_t begin = 0, size = 0;
    int last_writer = -1;  // backward node index; -1: nothing writes it
    bool done = false;
  };
  void reduce(Bucket& b, float* grads);
  std::vector<Bucket> buckets_;
  Communicator& dp_;
  int reduced_early_ = 0;
};

}  // namespace ferry::parallel
