// engine/cuda/device_step.cpp — see device_step.h.
#include "engine/cuda/device_step.h"

#include <algorithm>
#include <cstring>

#include "base/error.h"
#include "engine/optim/device_table.h"

#if FERRY_WITH_CUDA
#include "engine/cuda/cuda_context.h"
#include "engine/cuda/device_shard.h"
#include "engine/cuda/engine_kernels.h"
#include "engine/cuda/pinned_buffer.h"
#include "engine/cuda/stream_queues.h"
#include "kernels/adamw.h"
#include "kernels/adamw_norm_share.h"
#include "kernels/cuda_check.h"
#endif

namespace ferry::gpu {

size_t device_optimizer_bytes(const Graph& g, bool reduce_buffer) {
  return (reduce_buffer ? 4 : 3) * static_cast<size_t>(g.storage_size()) * sizeof(float);
}

size_t device_sharded_optimizer_bytes(size_t shard, int ranks) {
  return (4 + static_cast<size_t>(ranks)) * shard * sizeof(float);
}

#if FERRY_WITH_CUDA

namespace {

namespace kc = kernels::cuda;

// The DP reduction's queues (engine/train/step_queues.h): record and wait on the backend's stream
// and the device communicator's (engine/cuda/stream_queues.h); bf16 gradients widened into an fp32
// reduce buffer at the same offsets, on the communicator's stream.
class CudaQueues final : public GradientQueues {
 public:
  CudaQueues(CudaBackend& be, cudaStream_t comm, bf16* grads, size_t n)
      : streams_(make_stream_queues(be, comm)), comm_(comm), grads_(grads), reduce_(be, n * sizeof(float)) {}

  void record(Queue q, int e) override { streams_->record(q, e); }
  void wait(Queue q, int e) override { streams_->wait(q, e); }
  float* widen(size_t begin, size_t count) override {
    float* at = static_cast<float*>(reduce_.data()) + begin;
    convert_bf16_to_f32(at, grads_ + begin, count, comm_);
    return at;
  }
  void narrow(size_t begin, size_t count) override {
    convert_f32_to_bf16(grads_ + begin, static_cast<const float*>(reduce_.data()) + begin, count, comm_);
  }

 private:
  std::unique_ptr<StepQueues> streams_;
  cudaStream_t comm_;
  bf16* grads_;
  DeviceBuffer reduce_;
};

// Where one micro-batch's input lands: staged at `staging` bytes into the staging buffer, copied
// by the step into value `value`.
struct InputSlot {
  int micro_batch;
  int value;
  size_t bytes;
  size_t staging;
};

// Layout of the small per-step results buffer (fp32): norm, clip scale, then one loss per micro-batch.
constexpr size_t kNorm = 0, kClip = 1, kLosses = 2;

class CudaStep final : public DeviceStep {
 public:
  CudaStep(const Graph& g, Executor& ex, const AdamWConfig& cfg, const std::vector<bool>& owned, OptimizerShard shard)
      : g_(g), ex_(ex), be_(cuda_backend(ex.backend())), cfg_(cfg), n_(static_cast<size_t>(g.storage_size())) {
    if (!g.params.empty() && g.values[g.params[0].value].dtype != DType::BF16)
      user_error("the CUDA backend trains bf16 graphs (parameters are ", dtype_name(g.values[g.params[0].value].dtype),
                 "): build the model with dtype bf16");
    // The model's parameters [0, n_params): a pipeline stage's received activations follow them in
    // the buffers and stay out of the table (neither updated nor counted).
    const int n_params = owned.empty() ? static_cast<int>(g.params.size()) : static_cast<int>(owned.size());
    FERRY_CHECK(n_params <= static_cast<int>(g.params.size()), "owners for ", n_params, " of ", g.params.size(),
                " parameters");
    const size_t end = params_storage_end(g, n_params);
    n_model_ = end;
    sum_squares_ = DeviceBuffer(be_, sizeof(double));
    if (shard) {  // ZeRO-1: the state of this rank's shard only (device_shard.h)
      shard_ = std::make_unique<DeviceShard>(be_, adamw_table(g, n_params, owned, shard.range, cfg), end, cfg,
                                             std::move(shard));
    } else {
      master_ = DeviceBuffer(be_, n_ * sizeof(float));
      m_ = DeviceBuffer(be_, n_ * sizeof(float));
      v_ = DeviceBuffer(be_, n_ * sizeof(float));
      for (DeviceBuffer* b : {&master_, &m_, &v_}) be_.zero(b->data(), b->size());

      // The one segment table (engine/optim/adamw.h) over the model's parameters: frozen ones are
      // segments with lr_scale 0, which the kernel leaves as they are (values and moments). Its
      // counted segments, merged, are what the norm sums (under TP, this rank's share that
      // set_norm_reduction sums over the group).
      const DeviceTable table = device_table(adamw_table(g, n_params, owned, {0, end}, cfg));
      counts_all_ = table.counts_all;
      n_norm_ranges_ = static_cast<int>(table.counted.size());
      norm_ranges_ = DeviceBuffer(be_, std::max<size_t>(table.counted.size(), 1) * sizeof(kc::NormRange));
      if (!table.counted.empty())
        be_.upload(norm_ranges_.data(), table.counted.data(), table.counted.size() * sizeof(kc::NormRange));
      n_segments_ = static_cast<int>(table.segments.size());
      segments_ = DeviceBuffer(be_, table.segments.size() * sizeof(kc::AdamWSegment));
      be_.upload(segments_.data(), table.segments.data(), segments_.size());
    }
    step_values_ = DeviceBuffer(be_, sizeof(kc::AdamWStep));
    norm_workspace_ = DeviceBuffer(be_, kc::grad_norm_workspace_bytes());
    host_step_.reserve(sizeof(kc::AdamWStep));
    be_.synchronize();
  }

  ~CudaStep() override {
    if (exec_) cudaGraphExecDestroy(exec_);
    if (graph_) cudaGraphDestroy(graph_);
  }

  StepResult train(const std::vector<Batch>& micro_batches, float lr) override {
    FERRY_CHECK(!micro_batches.empty(), "a step needs at least one micro-batch");
    const cudaStream_t s = be_.stream();
    stage(micro_batches);
    ++steps_;
    *host_step_.as<kc::AdamWStep>() = {lr, steps_};
    FERRY_CUDA_CHECK(cudaMemcpyAsync(step_values_.data(), host_step_.as<void>(), sizeof(kc::AdamWStep),
                                     cudaMemcpyHostToDevice, s));
    if (replay_ && eager_steps_ > 0 && !reduce_ && (!shard_ || shard_->capturable())) {
      if (!exec_) capture();
      FERRY_CUDA_CHECK(cudaGraphLaunch(exec_, s));
    } else {
      body();
      ++eager_steps_;
    }
    const size_t result_bytes = (kLosses + micro_batches.size()) * sizeof(float);
    FERRY_CUDA_CHECK(cudaMemcpyAsync(host_results_.as<void>(), results_.data(), result_bytes, cudaMemcpyDeviceToHost, s));
    FERRY_CUDA_CHECK(cudaStreamSynchronize(s));
    const float* r = host_results_.as<float>();
    StepResult out;
    for (size_t k = 0; k < micro_batches.size(); ++k) out.loss += r[kLosses + k];
    out.loss /= static_cast<double>(micro_batches.size());
    out.grad_norm = r[kNorm];
    return out;
  }

  // The device buffers are in the storage order (graph.h); the host sees the logical one. Under
  // ZeRO-1 the getters gather the shards over the DP group.
  std::vector<float> parameters() const override {
    return shard_ ? logical(shard_->gather(DeviceShard::Part::master)) : logical(master_);
  }

  void set_parameters(const std::vector<float>& flat) override {
    const size_t n = static_cast<size_t>(g_.param_count());
    if (flat.size() != n) user_error("parameters: ", flat.size(), " values for a model of ", n);
    if (shard_) {
      const std::vector<float> s = storage(flat);
      shard_->scatter(DeviceShard::Part::master, s.data());
      shard_->set_working_copy(ex_.params().as<bf16>(), s.data());
      return;
    }
    upload_logical(master_, flat);
    convert_f32_to_bf16(ex_.params().as<bf16>(), static_cast<const float*>(master_.data()), n_, be_.stream());
    be_.synchronize();
  }

  OptimizerState optimizer_state() const override {
    OptimizerState st;
    st.steps = steps_;
    st.m = shard_ ? logical(shard_->gather(DeviceShard::Part::m)) : logical(m_);
    st.v = shard_ ? logical(shard_->gather(DeviceShard::Part::v)) : logical(v_);
    return st;
  }

  void set_optimizer_state(const OptimizerState& st) override {
    const size_t n = static_cast<size_t>(g_.param_count());
    if (st.m.size() != n || st.v.size() != n || st.steps < 0)
      user_error("optimizer state: ", st.m.size(), "/", st.v.size(), " moments for a model of ", n, " parameters");
    if (shard_) {
      shard_->scatter(DeviceShard::Part::m, storage(st.m).data());
      shard_->scatter(DeviceShard::Part::v, storage(st.v).data());
    } else {
      upload_logical(m_, st.m);
      upload_logical(v_, st.v);
    }
    be_.synchronize();
    steps_ = st.steps;
  }

  double update(float lr) override {
    const cudaStream_t s = be_.stream();
    ++steps_;
    *host_step_.as<kc::AdamWStep>() = {lr, steps_};
    FERRY_CUDA_CHECK(cudaMemcpyAsync(step_values_.data(), host_step_.as<void>(), sizeof(kc::AdamWStep),
                                     cudaMemcpyHostToDevice, s));
    const size_t result_bytes = kLosses * sizeof(float);
    if (results_.size() < result_bytes) {
      drop_graph();  // a captured step writes into the old buffer
      results_ = DeviceBuffer(be_, result_bytes);
    }
    host_results_.reserve(result_bytes);
    optimize(static_cast<float*>(results_.data()));
    FERRY_CUDA_CHECK(cudaMemcpyAsync(host_results_.as<void>(), results_.data(), result_bytes, cudaMemcpyDeviceToHost, s));
    FERRY_CUDA_CHECK(cudaStreamSynchronize(s));
    return host_results_.as<float>()[kNorm];
  }

  void set_graph_replay(bool on) override { replay_ = on; }
  void set_gradient_reduction(std::function<void(void* grads, size_t n)> reduce) override {
    FERRY_CHECK(!reduce || !shard_, "a gradient reduction under ZeRO-1: its reduce-scatter is the DP sum");
    drop_graph();
    reduce_ = std::move(reduce);
  }
  void set_gradient_hooks(GradientHooks hooks, void* comm_stream) override {
    FERRY_CHECK(!hooks || !shard_, "gradient hooks under ZeRO-1: its reduce-scatter is the DP sum");
    drop_graph();
    FERRY_CHECK(!hooks || comm_stream != nullptr, "gradient hooks need the communicator's stream");
    hooks_ = std::move(hooks);
    queues_.reset();
    if (hooks_)
      queues_ = std::make_unique<CudaQueues>(be_, static_cast<cudaStream_t>(comm_stream), ex_.grads().as<bf16>(), n_);
  }
  void set_norm_reduction(std::function<void(double* sum_squares)> reduce) override {
    drop_graph();
    norm_reduce_ = std::move(reduce);
  }
  size_t graph_nodes() const override { return graph_nodes_; }

 private:
  std::vector<float> logical(const DeviceBuffer& on_device) const {
    std::vector<float> s(n_);
    be_.download(s.data(), on_device.data(), n_ * sizeof(float));
    return logical(std::move(s));
  }
  std::vector<float> logical(std::vector<float> s) const {
    s.resize(n_, 0.0f);  // a shard's gather ends with the parameters
    std::vector<float> out(static_cast<size_t>(g_.param_count()));
    gather_from_storage(g_, s.data(), out.data());
    return out;
  }
  std::vector<float> storage(const std::vector<float>& flat) const {
    std::vector<float> s(n_, 0.0f);
    scatter_to_storage(g_, flat.data(), s.data());
    return s;
  }
  void upload_logical(DeviceBuffer& storage, const std::vector<float>& flat) {
    std::vector<float> s(n_, 0.0f);
    scatter_to_storage(g_, flat.data(), s.data());
    be_.upload(storage.data(), s.data(), n_ * sizeof(float));
    be_.synchronize();  // s is pageable and goes out of scope
  }

  // Copies every micro-batch's inputs into pinned memory and queues one upload to the staging
  // buffer. A different set of inputs than the captured graph's (another number of micro-batches)
  // drops the graph; the next step captures again.
  void stage(const std::vector<Batch>& micro_batches) {
    std::vector<InputSlot> slots;
    size_t total = 0;
    for (size_t k = 0; k < micro_batches.size(); ++k) {
      for (const auto& [value, data] : micro_batches[k].inputs) {
        FERRY_CHECK(value >= 0 && value < static_cast<int>(g_.values.size()) &&
                        g_.values[value].role == ValueRole::Input,
                    "batch input ", value, " is not an input of the graph");
        const size_t bytes = data.size() * sizeof(int32_t);
        FERRY_CHECK(bytes == g_.values[value].nbytes(), "input ", g_.values[value].name, ": ", bytes, " bytes for ",
                    g_.values[value].nbytes());
        slots.push_back({static_cast<int>(k), value, bytes, total});
        total += (bytes + 255) / 256 * 256;
      }
    }
    const bool same = slots.size() == slots_.size() &&
                      std::equal(slots.begin(), slots.end(), slots_.begin(), [](const InputSlot& a, const InputSlot& b) {
                        return a.micro_batch == b.micro_batch && a.value == b.value && a.bytes == b.bytes;
                      });
    if (!same) {
      drop_graph();
      slots_ = std::move(slots);
      if (staging_.size() < total) staging_ = DeviceBuffer(be_, total);
      host_staging_.reserve(std::max<size_t>(total, 1));
    }
    const size_t result_bytes = (kLosses + micro_batches.size()) * sizeof(float);
    if (results_.size() < result_bytes) {
      drop_graph();  // the graph writes into the old buffer
      results_ = DeviceBuffer(be_, result_bytes);
    }
    host_results_.reserve(result_bytes);
    size_t i = 0;
    for (size_t k = 0; k < micro_batches.size(); ++k)
      for (const auto& [value, data] : micro_batches[k].inputs)
        std::memcpy(host_staging_.as<char>() + slots_[i++].staging, data.data(), data.size() * sizeof(int32_t));
    if (total)
      FERRY_CUDA_CHECK(cudaMemcpyAsync(staging_.data(), host_staging_.as<void>(), total, cudaMemcpyHostToDevice,
                                       be_.stream()));
  }

  // The step as queued work on the stream: what is captured once and replayed. Its kernels take
  // their scratch from the step's own workspace (sized by the eager step, never moved while a
  // captured graph exists), not from the backend's shared one, which evaluation may regrow.
  void body() {
    const WorkspaceScope own_scratch(be_.workspaces(), workspace_);
    const cudaStream_t s = be_.stream();
    float* results = static_cast<float*>(results_.data());
    const float* loss = ex_.tensor(g_.loss).as<float>();
    FERRY_CHECK(ex_.tensor(g_.loss).dtype == DType::F32, "the loss must be fp32 on the CUDA backend");
    ex_.zero_grads();
    int micro_batch = -1;
    for (const InputSlot& slot : slots_) {
      if (slot.micro_batch != micro_batch) {
        if (micro_batch >= 0) run_micro_batch(micro_batch, false, loss, results);
        micro_batch = slot.micro_batch;
      }
      FERRY_CUDA_CHECK(cudaMemcpyAsync(ex_.tensor(slot.value).data, static_cast<char*>(staging_.data()) + slot.staging,
                                       slot.bytes, cudaMemcpyDeviceToDevice, s));
    }
    run_micro_batch(std::max(micro_batch, 0), true, loss, results);
    if (reduce_) {  // eager only (see set_gradient_reduction)
      be_.synchronize();
      reduce_(ex_.grads().data, n_);
    }
    optimize(results);
  }

  // The norm, the clip and AdamW over the gradients in the executor's buffer, queued on the stream;
  // the norm and the clip scale land in results[kNorm], results[kClip].
  void optimize(float* results) {
    const cudaStream_t s = be_.stream();
    const bf16* grads = ex_.grads().as<bf16>();
    if (shard_) {  // ZeRO-1: the DP sum, the norm and AdamW over this rank's shard (device_shard.h)
      double* sum_squares = static_cast<double*>(sum_squares_.data());
      shard_->reduce_scatter(grads);
      shard_->norm_squared(sum_squares, norm_workspace_.data(), norm_workspace_.size());
      if (norm_reduce_) norm_reduce_(sum_squares);  // the model group's (TP × PP)
      shard_->all_reduce(sum_squares);              // the DP group's
      kc::grad_norm_finish(results + kNorm, results + kClip, sum_squares, cfg_.grad_clip, s);
      shard_->update(static_cast<const kc::AdamWStep*>(step_values_.data()), results + kClip);
      shard_->all_gather(ex_.params().as<bf16>());
      return;
    }
    // The norm counts the table's counted segments only, as the CPU optimizer does: frozen
    // parameters never count (whatever gradient backward left them), and under TP a rank counts
    // its shards and the replicated parameters it owns, the rest coming from norm_reduce_. When
    // every parameter counts on this rank alone, the whole buffer's vectorized norm is the same sum.
    if (counts_all_ && !norm_reduce_) {
      kc::grad_norm<bf16>(results + kNorm, results + kClip, grads, n_model_, cfg_.grad_clip, norm_workspace_.data(),
                          norm_workspace_.size(), s);
    } else {
      double* sum_squares = static_cast<double*>(sum_squares_.data());
      kc::grad_norm_squared<bf16>(sum_squares, grads, static_cast<const kc::NormRange*>(norm_ranges_.data()),
                                  n_norm_ranges_, norm_workspace_.data(), norm_workspace_.size(), s);
      if (norm_reduce_) norm_reduce_(sum_squares);
      kc::grad_norm_finish(results + kNorm, results + kClip, sum_squares, cfg_.grad_clip, s);
    }
    kc::adamw_update<bf16>(static_cast<float*>(master_.data()), ex_.params().as<bf16>(), static_cast<float*>(m_.data()),
                           static_cast<float*>(v_.data()), grads, n_model_,
                           static_cast<const kc::AdamWSegment*>(segments_.data()), n_segments_,
                           static_cast<const kc::AdamWStep*>(step_values_.data()), cfg_.beta1, cfg_.beta2, cfg_.eps,
                           results + kClip, s);
  }

  // The last micro-batch's backward issues the DP reduction (set_gradient_hooks) as it goes; its
  // `finish` leaves the compute stream waiting for the last bucket.
  void run_micro_batch(int k, bool last, const float* loss, float* results) {
    ex_.forward(true);
    if (last && hooks_) {
      hooks_.begin(*queues_);
      ex_.set_after_node(hooks_.after_node);
      struct Unhook {
        Executor& ex;
        ~Unhook() { ex.set_after_node({}); }
      } unhook{ex_};
      ex_.backward();
    } else {
      ex_.backward();
    }
    if (last && hooks_) hooks_.finish();
    FERRY_CUDA_CHECK(cudaMemcpyAsync(results + kLosses + k, loss, sizeof(float), cudaMemcpyDeviceToDevice, be_.stream()));
  }

  void capture() {
    const cudaStream_t s = be_.stream();
    FERRY_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    be_.set_capturing(true);
    try {
      body();
    } catch (...) {
      be_.set_capturing(false);
      cudaGraph_t broken = nullptr;
      cudaStreamEndCapture(s, &broken);
      if (broken) cudaGraphDestroy(broken);
      cudaGetLastError();
      throw;
    }
    be_.set_capturing(false);
    FERRY_CUDA_CHECK(cudaStreamEndCapture(s, &graph_));
    FERRY_CUDA_CHECK(cudaGraphInstantiate(&exec_, graph_, 0));
    FERRY_CUDA_CHECK(cudaGraphGetNodes(graph_, nullptr, &graph_nodes_));
  }

  void drop_graph() {
    if (exec_) FERRY_CUDA_CHECK(cudaGraphExecDestroy(exec_));
    if (graph_) FERRY_CUDA_CHECK(cudaGraphDestroy(graph_));
    exec_ = nullptr;
    graph_ = nullptr;
    graph_nodes_ = 0;
  }

  const Graph& g_;
  Executor& ex_;
  CudaBackend& be_;
  AdamWConfig cfg_;
  size_t n_;            // the flat buffers' elements
  size_t n_model_ = 0;  // where the model's parameters end in them (the rest: received activations)
  DeviceBuffer master_, m_, v_, segments_, step_values_, norm_workspace_, staging_, results_;
  DeviceBuffer norm_ranges_, sum_squares_;
  Workspace workspace_{be_};
  int n_segments_ = 0;
  int n_norm_ranges_ = 0;
  bool counts_all_ = false;  // one counted range over every parameter (no frozen one, no TP share)
  std::function<void(double* sum_squares)> norm_reduce_;
  PinnedBuffer host_step_, host_staging_, host_results_;
  std::vector<InputSlot> slots_;
  int steps_ = 0;
  int eager_steps_ = 0;
  bool replay_ = true;
  std::function<void(void* grads, size_t n)> reduce_;
  GradientHooks hooks_;
  std::unique_ptr<CudaQueues> queues_;
  std::unique_ptr<DeviceShard> shard_;  // ZeRO-1
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
  size_t graph_nodes_ = 0;
};

}  // namespace

std::unique_ptr<DeviceStep> make_device_step(const Graph& g, Executor& ex, const AdamWConfig& cfg,
                                             const std::vector<bool>& owned, OptimizerShard shard) {
  return std::make_unique<CudaStep>(g, ex, cfg, owned, std::move(shard));
}

#else

std::unique_ptr<DeviceStep> make_device_step(const Graph&, Executor& ex, const AdamWConfig&, const std::vector<bool>&,
                                             OptimizerShard) {
  FERRY_CHECK(false, "no device step for the ", ex.backend().name(), " backend in a build without CUDA");
  return nullptr;
}

#endif

}  // namespace ferry::gpu
