// parallel/rank_optimizer.cpp — see rank_optimizer.h.
#include "parallel/rank_optimizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/error.h"
#include "engine/cuda/device_step.h"

namespace ferry::parallel {

namespace {

class HostOptimizer final : public RankOptimizer {
 public:
  HostOptimizer(Executor& ex, AdamWTable table, const AdamWConfig& cfg, size_t n_local, bool zero1,
                Communicator& dp, Communicator& model)
      : ex_(ex), cfg_(cfg), adamw_(std::move(table), cfg), n_local_(n_local), zero1_(zero1), dp_(dp), model_(model) {}

  // ZeRO-1 reduce-scatters the gradients into this rank's shard (every rank's copy of the buffer
  // padded to shard · dp), and all-gathers the updated shards back into every rank's parameters.
  double update(float lr) override {
    float* grads = ex_.grads().as<float>();
    float* params = ex_.params().as<float>();
    const ShardRange shard = adamw_.shard();
    const int dp = dp_.size();
    if (zero1_ && dp > 1) {
      std::vector<float> padded(shard.size() * dp, 0.0f), mine(shard.size());
      std::memcpy(padded.data(), grads, n_local_ * sizeof(float));
      dp_.reduce_scatter(padded.data(), mine.data(), shard.size(), DType::f32, ReduceOp::sum);
      const size_t n = std::min(shard.end, n_local_) - std::min(shard.begin, n_local_);
      std::memcpy(grads + std::min(shard.begin, n_local_), mine.data(), n * sizeof(float));
    }
    double sq = adamw_.norm_squared(grads);
    model_.all_reduce(&sq, 1, DType::f64, ReduceOp::sum);
    if (zero1_) dp_.all_reduce(&sq, 1, DType::f64, ReduceOp::sum);
    const double norm = std::sqrt(sq);
    adamw_.update(params, grads, lr, clip_scale(norm, cfg_.grad_clip));
    if (zero1_ && dp > 1) {
      std::vector<float> padded(shard.size() * dp, 0.0f);
      std::memcpy(padded.data(), params, n_local_ * sizeof(float));
      dp_.all_gather(padded.data() + shard.begin, padded.data(), shard.size(), DType::f32);
      std::memcpy(params, padded.data(), n_local_ * sizeof(float));
    }
    return norm;
  }

  // The parameters are the executor's fp32 buffer itself (no separate master copy on the CPU).
  std::vector<float> parameters() const override {
    const float* params = ex_.params().as<float>();
    return {params, params + n_local_};
  }

  void set_parameters(const std::vector<float>& storage) override {
    FERRY_CHECK(storage.size() >= n_local_, "parameters: ", storage.size(), " storage values for ", n_local_);
    std::memcpy(ex_.params().as<float>(), storage.data(), n_local_ * sizeof(float));
  }

  OptimizerState state() const override {
    OptimizerState s;
    s.steps = adamw_.steps_taken();
    s.m = whole(adamw_.m());
    s.v = whole(adamw_.v());
    return s;
  }

  void set_state(const OptimizerState& storage) override {
    adamw_.m() = mine(storage.m);
    adamw_.v() = mine(storage.v);
    adamw_.set_steps_taken(storage.steps);
  }

 private:
  // [0, n_local) from this rank's moments (ZeRO-1: every rank's shard, gathered over DP).
  std::vector<float> whole(const std::vector<float>& moments) const {
    const ShardRange shard = adamw_.shard();
    std::vector<float> padded;
    if (zero1_) {
      padded.assign(shard.size() * dp_.size(), 0.0f);
      dp_.all_gather(moments.data(), padded.data(), shard.size(), DType::f32);
    } else {
      padded = moments;
    }
    padded.resize(n_local_);
    return padded;
  }
  // This rank's range of a storage array (the shard's padding past n_local zero).
  std::vector<float> mine(const std::vector<float>& storage) const {
    const ShardRange shard = adamw_.shard();
    FERRY_CHECK(storage.size() >= n_local_, "optimizer state: ", storage.size(), " storage values for ", n_local_);
    std::vector<float> local(std::max(n_local_, shard.end), 0.0f);
    std::copy(storage.begin(), storage.begin() + static_cast<std::ptrdiff_t>(n_local_), local.begin());
    return {local.begin() + static_cast<std::ptrdiff_t>(shard.begin),
            local.begin() + static_cast<std::ptrdiff_t>(shard.end)};
  }

  Executor& ex_;
  AdamWConfig cfg_;
  AdamW adamw_;
  size_t n_local_;
  bool zero1_;
  Communicator& dp_;
  Communicator& model_;
};

// The device step speaks its graph's logical order; the interface the storage one.
class DeviceOptimizer final : public RankOptimizer {
 public:
  DeviceOptimizer(gpu::DeviceStep& step, const Graph& g) : step_(step), g_(g) {}

  double update(float lr) override { return step_.update(lr); }
  std::vector<float> parameters() const override { return storage(step_.parameters()); }
  void set_parameters(const std::vector<float>& storage) override { step_.set_parameters(logical(storage)); }
  OptimizerState state() const override {
    OptimizerState s = step_.optimizer_state();
    s.m = storage(s.m);
    s.v = storage(s.v);
    return s;
  }
  void set_state(const OptimizerState& storage) override {
    OptimizerState s;
    s.steps = storage.steps;
    s.m = logical(storage.m);
    s.v = logical(storage.v);
    step_.set_optimizer_state(s);
  }

 private:
  std::vector<float> storage(const std::vector<float>& logical) const {
    std::vector<float> out(static_cast<size_t>(g_.storage_size()), 0.0f);
    scatter_to_storage(g_, logical.data(), out.data());
    return out;
  }
  std::vector<float> logical(const std::vector<float>& storage) const {
    FERRY_CHECK(storage.size() == static_cast<size_t>(g_.storage_size()), "device state: ", storage.size(),
                " storage values for ", g_.storage_size());
    std::vector<float> out(static_cast<size_t>(g_.param_count()));
    gather_from_storage(g_, storage.data(), out.data());
    return out;
  }

  gpu::DeviceStep& step_;
  const Graph& g_;
};

}  // namespace

std::unique_ptr<RankOptimizer> make_host_optimizer(Executor& ex, AdamWTable table, const AdamWConfig& cfg,
                                                   size_t n_local, bool zero1, Communicator& dp,
                                                   Communicator& model) {
  return std::make_unique<HostOptimizer>(ex, std::move(table), cfg, n_local, zero1, dp, model);
}

std::unique_ptr<RankOptimizer> make_device_optimizer(gpu::DeviceStep& step, const Graph& g) {
  return std::make_unique<DeviceOptimizer>(step, g);
}

}  // namespace ferry::parallel
