// parallel/runner.cpp — see runner.h.
#include "parallel/runner.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>

#include "base/error.h"
#include "engine/autodiff.h"
#include "engine/cuda/device_step.h"
#include "engine/graph_dtype.h"
#include "kernels/dtype.h"
#include "parallel/device_collectives.h"

#if FERRY_WITH_CUDA
#include "engine/cuda/cuda_context.h"
#include "engine/cuda/engine_kernels.h"
#include "kernels/cuda_check.h"
#endif

namespace ferry::parallel {

RunnerComms::RunnerComms(Communicator& w, RankGrid g)
    : world(w), grid(std::move(g)), coord(grid.coord_of(w.rank())), comms(make_grid_communicators(grid, w)) {
  tp_group = std::make_unique<GroupRegistration>(*comms.tp);
}

RunnerComms::RunnerComms()
    : own_world(make_single_communicator()),
      world(*own_world),
      grid(RankGrid::from_tp_pp(1, 1, 1)),
      coord(grid.coord_of(0)),
      comms(make_grid_communicators(grid, *own_world)) {
  tp_group = std::make_unique<GroupRegistration>(*comms.tp);
}

Runner::Runner(RankGraph g, std::unique_ptr<RunnerComms> comms, Backend& backend, RunnerOptions opt)
    : c_(std::move(comms)),
      backend_(backend),
      opt_(opt),
      n_full_(g.n_full),
      input_map_(std::move(g.input_map)),
      label_counts_(std::move(g.label_counts)),
      loss_is_share_(g.loss_is_share),
      graph_(std::move(g.graph)),
      origins_(std::move(g.origins)),
      n_model_params_(g.n_model_params),
      tied_params_(std::move(g.tied_params)),
      recv_(std::move(g.recv)),
      send_(std::move(g.send)),
      send_grad_(std::move(g.send_grad)) {
  FERRY_CHECK(graph_.loss >= 0, "a training step needs a loss");
  FERRY_CHECK(static_cast<int>(origins_.size()) == n_model_params_, "origins for ", origins_.size(), " of ",
              n_model_params_, " parameters");
  const GridShape shape = c_->grid.shape();
  const bool on_device = backend.device() == Device::CUDA;
  const bool device_comm = c_->comms.dp->buffers_on_device();
  if (device_comm && !on_device)
    user_error("the ", c_->world.backend_name(), " communicator carries device buffers: it needs the CUDA backend");
  // On CUDA: one rank, data parallelism (a device communicator: buckets reduced on a second stream
  // inside the captured step; a host one: summed through host memory after backward, eagerly),
  // tensor parallelism (the TP ops' collectives in stream order: captured with a device
  // communicator, eager steps with a host one), ZeRO-1 (the device step's shard: reduce-scatter,
  // update, all-gather; captured with a device communicator, eager with a host one), with the
  // fine-tuning losses' global label counts as step inputs, and pipeline stages (this runner's 1F1B
  // on the executor, eager steps).
  FERRY_CHECK(!tied_params_.empty() == (c_->tie != nullptr), "tied parameters without their communicator");
  if (static_cast<int>(graph_.nodes.size()) == graph_.num_forward_nodes) {
    // A graph built in fp32 (the fine-tuning task graphs) runs in bf16 on the CUDA backend.
    retype_for_device(graph_, backend.device());
    derive_backward(graph_);
  }
  n_local_ = params_storage_end(graph_, n_model_params_);
  for (int v : recv_) recv_elems_ += static_cast<size_t>(numel(graph_.values[v].shape));
  for (int v : send_) send_elems_ += static_cast<size_t>(numel(graph_.values[v].shape));
  const ShardRange shard = optimizer_shard(n_local_, opt.layout.zero1 ? shape.dp : 1, opt.layout.zero1 ? c_->coord.dp : 0);
  // ZeRO-1 on CUDA shards the device step's state; with one rank on a host communicator the shard
  // is the whole buffer and there is nothing to scatter (the unsharded step, as on the CPU). One
  // NCCL rank runs the sharded step (its collectives are copies).
  const bool device_shard = on_device && opt.layout.zero1 && (shape.dp > 1 || device_comm);
  const size_t state_bytes = !on_device     ? AdamW::state_bytes(shard.size())
                             : device_shard ? gpu::device_sharded_optimizer_bytes(shard.size(), shape.dp)
                                            : gpu::device_optimizer_bytes(graph_, device_comm || shape.dp > 1);
  executor_ = std::make_unique<Executor>(graph_, backend, state_bytes, opt.memory_limit);
  verify_plan(graph_, executor_->plan());
  std::vector<bool> owned;
  for (const auto& o : origins_) owned.push_back(o.owner);
  if (on_device) {
    gpu::OptimizerShard sharded;
    if (device_shard) {  // plain calls: the device step forks onto the stream or stages through the host
      Communicator& dp = *c_->comms.dp;
      sharded.range = shard;
      sharded.ranks = shape.dp;
      sharded.reduce_scatter = [&dp](const float* whole, float* block, size_t n) {
        dp.reduce_scatter(whole, block, n, DType::f32, ReduceOp::sum);
      };
      sharded.all_gather = [&dp](const float* block, float* whole, size_t n) {
        dp.all_gather(block, whole, n, DType::f32);
      };
      sharded.all_reduce = [&dp](double* data, size_t n) { dp.all_reduce(data, n, DType::f64, ReduceOp::sum); };
      sharded.comm_stream = dp.device_stream();
    }
    device_ = gpu::make_device_step(graph_, *executor_, opt.adamw, owned, std::move(sharded));
    optimizer_ = make_device_optimizer(*device_, graph_);
    if (shape.tp > 1 || shape.pp > 1) {
      // The TP ops' collectives and the norm's sum are issued on queues over the backend's stream
      // and each communicator's (parallel/device_collectives.h): the TP group's live in its
      // registration, the norm's in its reduction. Each parameter counted once: the shards summed
      // over the model group (TP × PP), a replicated or tied parameter by its owner. A host
      // communicator's round trips (here and in the TP ops) are not replayable.
      c_->tp_group->set_queues(make_collective_queues(backend, *c_->comms.tp));
      std::shared_ptr<StepQueues> norm_queues = make_collective_queues(backend, *c_->comms.model);
      device_->set_norm_reduction([this, norm_queues](double* sum_squares) {
        issue_all_reduce(backend_, *norm_queues, *c_->comms.model, sum_squares, 1, DType::f64, ReduceOp::sum);
      });
      if (!c_->comms.tp->buffers_on_device()) device_->set_graph_replay(false);
    }
    // Pipeline stages run the 1F1B schedule here and reduce their gradients after it
    // (reduce_and_update_on_device); the device step only updates.
    if (shape.pp > 1 || device_shard) return;  // under ZeRO-1 the reduce-scatter is the DP sum
    if (device_comm) {  // any DP size: one NCCL rank runs the same schedule (its sums are copies)
      buckets_ = std::make_unique<GradientBuckets>(graph_, n_model_params_, opt.layout.bucket_elems, *c_->comms.dp);
      device_->set_gradient_hooks(buckets_->hooks(), c_->comms.dp->device_stream());
    } else if (shape.dp > 1) {
      device_->set_gradient_reduction([this](void*, size_t n) { sum_gradients(*c_->comms.dp, 0, n); });
    }
    return;
  }
  optimizer_ = make_host_optimizer(*executor_, adamw_table(graph_, n_model_params_, owned, shard, opt.adamw), opt.adamw,
                                   n_local_, opt.layout.zero1, *c_->comms.dp, *c_->comms.model);
  if (shape.dp > 1 && !opt.layout.zero1) {
    buckets_ = std::make_unique<GradientBuckets>(graph_, n_model_params_, opt.layout.bucket_elems, *c_->comms.dp);
    host_queues_ = std::make_unique<HostQueues>(grads_ptr());
  }
}

Runner::~Runner() = default;

void Runner::set_graph_replay(bool on) {
  // TP through a host communicator stages inside the step: never replayed (see the constructor).
  const bool host_tp = c_->grid.shape().tp > 1 && !c_->comms.tp->buffers_on_device();
  if (device_) device_->set_graph_replay(on && !host_tp);
}

size_t Runner::graph_nodes() const { return device_ ? device_->graph_nodes() : 0; }

namespace {

// Host values summed over `comm`: a device communicator takes them through `scratch`, a device
// buffer grown to fit (outside any captured step: the step is done when this runs).
void all_reduce_host(Backend& backend, DeviceBuffer& scratch, Communicator& comm, void* data, size_t count,
                     DType type) {
  if (!comm.buffers_on_device()) return comm.all_reduce(data, count, type, ReduceOp::sum);
  const size_t bytes = count * dtype_size(type);
  if (scratch.size() < bytes) scratch = DeviceBuffer(backend, bytes);
  backend.upload(scratch.data(), data, bytes);
  backend.synchronize();  // the communicator's stream does not follow the backend's
  comm.all_reduce(scratch.data(), count, type, ReduceOp::sum);
  comm.synchronize();
  backend.download(data, scratch.data(), bytes);
}

// The labelled rows of this rank's batch for one label count (the caller sums them over DP).
double labelled_rows(const Batch& b, const LabelCount& lc) {
  double n = 0;  // exact: counts stay far below 2^53
  bool found = false;
  for (const auto& [value, data] : b.inputs)
    if (value == lc.targets) {
      found = true;
      for (int32_t t : data) n += t != lc.ignore;
    }
  FERRY_CHECK(found, "the batch has no targets for a label count (input ", lc.targets, ")");
  return n;
}

// The single-process flat order's values of parameters [0, n) of g, at their storage offsets, in a
// zeroed buffer of `size` elements.
std::vector<float> scatter_full(const Graph& g, const std::vector<ParamOrigin>& origins, int n,
                                const std::vector<float>& full, size_t size) {
  std::vector<float> local(size, 0.0f);
  for (int k = 0; k < n; ++k)
    for (const ParamRun& run : origins[k].runs)
      std::memcpy(local.data() + g.params[k].storage + run.local, full.data() + run.full, run.count * sizeof(float));
  return local;
}

}  // namespace

void Runner::all_reduce_scalar(Communicator& comm, double& x) {
  all_reduce_host(backend_, scalar_, comm, &x, 1, DType::f64);
}

// A batch is keyed by the single-process graph's input ids; another stage's inputs are skipped.
// Label counts: the labelled rows of every DP rank's batch, summed (all DP ranks load together).
void Runner::load(const Batch& b) {
  for (const auto& [value, data] : b.inputs) {
    auto it = input_map_.find(value);
    if (it == input_map_.end()) continue;
    executor_->set_input(it->second, data.data(), data.size() * sizeof(int32_t));
  }
  for (const LabelCount& lc : label_counts_) {
    double n = labelled_rows(b, lc);
    all_reduce_scalar(*c_->comms.dp, n);
    const int32_t count = static_cast<int32_t>(n);
    executor_->set_input(lc.count, &count, sizeof(count));
  }
}

// ---- pipeline ----------------------------------------------------------------------------------
//
// Messages are fp32. On the CPU they are the values themselves; on CUDA the stage's bf16 values
// are widened into the message (or into a device scratch, downloaded for a host communicator) and
// narrowed back where they land. A device communicator's point-to-point runs on its own stream:
// the host waits for the backend's stream before a send and for the communicator's after each
// operation, so a message is complete and no longer read when the schedule goes on (eager steps;
// overlapping the transfers with compute is left to a captured pipeline).

namespace {

#if FERRY_WITH_CUDA
void widen(Backend& be, float* dst, const Tensor& t) {
  const cudaStream_t s = gpu::cuda_backend(be).stream();
  if (t.dtype == ferry::DType::BF16) return gpu::convert_bf16_to_f32(dst, t.as<ferry::bf16>(), size_t(t.numel()), s);
  FERRY_CHECK(t.dtype == ferry::DType::F32, "a pipeline message of ", dtype_name(t.dtype));
  FERRY_CUDA_CHECK(cudaMemcpyAsync(dst, t.data, t.nbytes(), cudaMemcpyDeviceToDevice, s));
}
void narrow(Backend& be, const Tensor& t, const float* src) {
  const cudaStream_t s = gpu::cuda_backend(be).stream();
  if (t.dtype == ferry::DType::BF16) return gpu::convert_f32_to_bf16(t.as<ferry::bf16>(), src, size_t(t.numel()), s);
  FERRY_CHECK(t.dtype == ferry::DType::F32, "a pipeline message of ", dtype_name(t.dtype));
  FERRY_CUDA_CHECK(cudaMemcpyAsync(t.data, src, t.nbytes(), cudaMemcpyDeviceToDevice, s));
}
#else
void widen(Backend& be, float*, const Tensor&) { FERRY_CHECK(false, "a device message on the ", be.name(), " backend"); }
void narrow(Backend& be, const Tensor&, const float*) {
  FERRY_CHECK(false, "a device message on the ", be.name(), " backend");
}
#endif

}  // namespace

Runner::Message Runner::message(size_t count) {
  Message m;
  m.count = count;
  if (c_->comms.pp->buffers_on_device())
    m.device = DeviceBuffer(backend_, count * sizeof(float));
  else
    m.host.resize(count);
  return m;
}

std::vector<Tensor> Runner::tensors(const std::vector<int>& values) const {
  std::vector<Tensor> out;
  for (int v : values) out.push_back(executor_->tensor(v));
  return out;
}

// The gradients of the received activations (parameters of this stage, never updated), where the
// flat gradient buffer holds them: zeros when nothing on this stage needs them (a frozen stage).
std::vector<Tensor> Runner::received_grad_tensors() const {
  const Tensor grads = executor_->grads();
  std::vector<Tensor> out;
  for (int v : recv_) {
    const ParamInfo& p = graph_.params[graph_.values[v].param];
    out.push_back({static_cast<char*>(grads.data) + p.storage * dtype_size(grads.dtype), graph_.values[v].shape,
                   grads.dtype, grads.device});
  }
  return out;
}

void Runner::pack(Message& m, const std::vector<Tensor>& from) {
  size_t at = 0;
  if (backend_.device() != Device::CUDA) {
    for (const Tensor& t : from) {
      FERRY_CHECK(t.dtype == ferry::DType::F32, "a pipeline message of ", dtype_name(t.dtype));
      std::memcpy(m.host.data() + at, t.data, t.nbytes());
      at += static_cast<size_t>(t.numel());
    }
  } else {
    if (!m.device.data() && link_scratch_.size() < m.count * sizeof(float))
      link_scratch_ = DeviceBuffer(backend_, m.count * sizeof(float));
    float* dst = static_cast<float*>(m.device.data() ? m.device.data() : link_scratch_.data());
    for (const Tensor& t : from) {
      widen(backend_, dst + at, t);
      at += static_cast<size_t>(t.numel());
    }
    if (!m.device.data()) backend_.download(m.host.data(), dst, at * sizeof(float));  // waits for the stream
  }
  FERRY_CHECK(at == m.count, "pipeline message of ", m.count, " values for ", at);
}

void Runner::unpack(Message& m, const std::vector<Tensor>& to) {
  size_t at = 0;
  if (backend_.device() != Device::CUDA) {
    for (const Tensor& t : to) {
      std::memcpy(t.data, m.host.data() + at, t.nbytes());
      at += static_cast<size_t>(t.numel());
    }
  } else {
    const float* src = static_cast<const float*>(m.device.data());
    if (!src) {
      if (link_scratch_.size() < m.count * sizeof(float)) {
        backend_.synchronize();  // queued work may still read the old scratch
        link_scratch_ = DeviceBuffer(backend_, m.count * sizeof(float));
      }
      backend_.upload(link_scratch_.data(), m.host.data(), m.count * sizeof(float));
      src = static_cast<const float*>(link_scratch_.data());
    }
    for (const Tensor& t : to) {
      narrow(backend_, t, src + at);
      at += static_cast<size_t>(t.numel());
    }
  }
  FERRY_CHECK(at == m.count, "pipeline message of ", m.count, " values for ", at);
}

void Runner::send(Message& m, int peer) {
  Communicator& pp = *c_->comms.pp;
  if (pp.buffers_on_device()) backend_.synchronize();
  pp.send(m.data(), m.count, DType::f32, peer);
  if (pp.buffers_on_device()) pp.synchronize();
}

void Runner::recv(Message& m, int peer) {
  Communicator& pp = *c_->comms.pp;
  pp.recv(m.data(), m.count, DType::f32, peer);
  if (pp.buffers_on_device()) pp.synchronize();
}

void Runner::send_recv(Message& out, int dest, Message& in, int source) {
  Communicator& pp = *c_->comms.pp;
  if (pp.buffers_on_device()) backend_.synchronize();
  pp.send_recv(out.data(), out.count, dest, in.data(), in.count, source, DType::f32);
  if (pp.buffers_on_device()) pp.synchronize();
}

Runner::Message Runner::forward_micro(const Batch& b, Message received, double& loss_sum) {
  if (!recv_.empty()) unpack(received, tensors(recv_));
  load(b);
  executor_->forward(true);
  const bool last = c_->coord.pp == c_->grid.shape().pp - 1;
  if (last) loss_sum += executor_->read_scalar(graph_.loss);
  Message sent = message(last ? 0 : send_elems_);
  if (!last) pack(sent, tensors(send_));
  // Keep this micro-batch's activations for its backward; the next forward gets a spare arena.
  InFlight f;
  if (spare_arenas_.empty()) {
    f.arena = DeviceBuffer(backend_, executor_->plan().arena_bytes);
  } else {
    f.arena = std::move(spare_arenas_.back());
    spare_arenas_.pop_back();
  }
  executor_->swap_arena(f.arena);
  f.received = std::move(received);
  in_flight_.push_back(std::move(f));
  return sent;
}

Runner::Message Runner::backward_micro(Message& dgrad, bool last) {
  FERRY_CHECK(!in_flight_.empty(), "backward without a forward in flight");
  InFlight f = std::move(in_flight_.front());
  in_flight_.pop_front();
  executor_->swap_arena(f.arena);
  spare_arenas_.push_back(std::move(f.arena));
  if (!recv_.empty()) {
    unpack(f.received, tensors(recv_));  // later forwards overwrote them; backward reads its inputs
    for (const Tensor& t : received_grad_tensors()) backend_.zero(t.data, t.nbytes());
  }
  unpack(dgrad, tensors(send_grad_));
  if (last && buckets_) executor_->set_after_node([this](int node) { buckets_->on_node(node); });
  executor_->backward();
  executor_->set_after_node({});
  Message out = message(recv_.empty() ? 0 : recv_elems_);
  if (!recv_.empty()) pack(out, received_grad_tensors());
  return out;
}

double Runner::run_1f1b(const std::vector<Batch>& micro) {
  const int stage = c_->coord.pp, stages = c_->grid.shape().pp, M = static_cast<int>(micro.size());
  const bool first = stage == 0, last = stage == stages - 1;
  auto recv_forward = [&] {
    Message x = message(first ? 0 : recv_elems_);
    if (!first) recv(x, stage - 1);
    return x;
  };
  auto send_forward = [&](Message& y) {
    if (!last) send(y, stage + 1);
  };
  auto send_forward_recv_backward = [&](Message& y) {
    Message dy = message(last ? 0 : send_elems_);
    if (!last) send_recv(y, stage + 1, dy, stage + 1);
    return dy;
  };
  auto send_backward_recv_forward = [&](Message& dx) {
    Message x = message(first ? 0 : recv_elems_);
    if (!first) send_recv(dx, stage - 1, x, stage - 1);
    return x;
  };
  auto send_backward = [&](Message& dx) {
    if (!first) send(dx, stage - 1);
  };
  auto recv_backward = [&] {
    Message dy = message(last ? 0 : send_elems_);
    if (!last) recv(dy, stage + 1);
    return dy;
  };

  double loss_sum = 0;
  const int warmup = std::min(stages - stage - 1, M), remaining = M - warmup;
  int backward_done = 0;
  for (int i = 0; i < warmup; ++i) {
    Message y = forward_micro(micro[i], recv_forward(), loss_sum);
    send_forward(y);
  }
  Message x = remaining > 0 ? recv_forward() : message(0);
  for (int i = 0; i < remaining; ++i) {
    Message y = forward_micro(micro[warmup + i], std::move(x), loss_sum);
    Message dy = send_forward_recv_backward(y);
    Message dx = backward_micro(dy, ++backward_done == M);
    if (i == remaining - 1)
      send_backward(dx);
    else
      x = send_backward_recv_forward(dx);
  }
  for (int i = 0; i < warmup; ++i) {
    Message dy = recv_backward();
    Message dx = backward_micro(dy, ++backward_done == M);
    send_backward(dx);
  }
  return loss_sum;
}

// ---- the step ----------------------------------------------------------------------------------

StepResult Runner::train(const std::vector<Batch>& micro, float lr) {
  FERRY_CHECK(!micro.empty(), "a step needs at least one micro-batch");
  FERRY_CHECK(opt_.micro_batches == 0 || static_cast<int>(micro.size()) == opt_.micro_batches,
              "the graph's loss scale was built for ", opt_.micro_batches, " micro-batches, the step has ",
              micro.size());
  if (device_ && c_->grid.shape().pp == 1) {  // the DP mean of the loss; the norm is already the global one
    // Batches are keyed by the single-process graph's inputs; the device step reads this rank's.
    // Label counts travel as inputs too: every micro-batch's, summed over DP in one all-reduce
    // before the step (no host round trip inside it).
    std::vector<Batch> local(micro.size());
    std::vector<double> counts;
    for (size_t k = 0; k < micro.size(); ++k) {
      for (const auto& [value, data] : micro[k].inputs)
        if (auto it = input_map_.find(value); it != input_map_.end()) local[k].inputs.emplace_back(it->second, data);
      for (const LabelCount& lc : label_counts_) counts.push_back(labelled_rows(micro[k], lc));
    }
    if (!counts.empty()) {
      all_reduce_host(backend_, scalar_, *c_->comms.dp, counts.data(), counts.size(), DType::f64);
      size_t i = 0;
      for (Batch& b : local)
        for (const LabelCount& lc : label_counts_)
          b.inputs.emplace_back(lc.count, std::vector<int32_t>{static_cast<int32_t>(counts[i++])});
    }
    StepResult r = device_->train(local, lr);
    if (c_->grid.shape().dp > 1) {
      all_reduce_scalar(*c_->comms.dp, r.loss);
      // With label counts each rank's loss is its share of the global mean already.
      if (!loss_is_share_) r.loss /= c_->grid.shape().dp;
    }
    return r;
  }
  executor_->zero_grads();
  if (buckets_) buckets_->begin_step(*host_queues_);
  double loss_sum = 0;
  if (c_->grid.shape().pp == 1) {
    for (size_t k = 0; k < micro.size(); ++k) {
      load(micro[k]);
      executor_->forward(true);
      loss_sum += executor_->read_scalar(graph_.loss);
      if (k + 1 == micro.size() && buckets_)
        executor_->set_after_node([this](int node) { buckets_->on_node(node); });
      executor_->backward();
      executor_->set_after_node({});
    }
  } else {
    loss_sum = run_1f1b(micro);
  }
  StepResult r;
  // The loss lives on the last stage (every TP rank of it has the whole value); the DP mean follows.
  double loss = loss_sum / static_cast<double>(micro.size());
  if (c_->coord.pp != c_->grid.shape().pp - 1) loss = 0;
  all_reduce_scalar(*c_->comms.pp, loss);
  all_reduce_scalar(*c_->comms.dp, loss);
  r.loss = loss_is_share_ ? loss : loss / c_->grid.shape().dp;
  reduce_and_update(lr, r);
  ++steps_;
  if (std::getenv("FERRY_RANK_LOG")) log_rank(r);
  return r;
}

// The DP sum (the CPU's buckets were issued during the last backward; pipeline stages on CUDA sum
// the whole buffer here; ZeRO-1's reduce-scatter is the optimizer's), the tied embedding's copies
// (first and last stage) summed, then the optimizer. Orders as ever: DP before the tie without
// ZeRO-1, the tie before the reduce-scatter with it.
void Runner::reduce_and_update(float lr, StepResult& r) {
  if (buckets_)
    buckets_->finish();
  else if (device_ && c_->grid.shape().dp > 1 && !opt_.layout.zero1)
    sum_gradients(*c_->comms.dp, 0, n_local_);
  for (int k : tied_params_)
    sum_gradients(*c_->tie, graph_.params[k].storage, static_cast<size_t>(graph_.params[k].numel));
  r.grad_norm = optimizer_->update(lr);
}

// Elements [begin, begin + count) of the gradient buffer summed over `comm`, in place: fp32 on the
// CPU; on CUDA bf16 summed in fp32 in a device scratch (device to device on NCCL, through the one
// pinned staging buffer of device_collectives on MPI), rounded back once, eagerly (the queues are
// made for the call and released once their work is done). Pipeline stages' DP and tied sums, and
// the device step's DP sum on a host communicator.
void Runner::sum_gradients(Communicator& comm, size_t begin, size_t count) {
  const Tensor grads = executor_->grads();
  const auto queues = make_collective_queues(backend_, comm);
  if (grads.dtype == ferry::DType::F32)
    return issue_all_reduce(backend_, *queues, comm, grads.as<float>() + begin, count, DType::f32, ReduceOp::sum);
  FERRY_CHECK(grads.dtype == ferry::DType::BF16, "gradients of ", dtype_name(grads.dtype));
  if (reduce_scratch_.size() < count * sizeof(float)) reduce_scratch_ = DeviceBuffer(backend_, count * sizeof(float));
  issue_all_reduce_bf16(backend_, *queues, comm, grads.as<ferry::bf16>() + begin, count,
                        static_cast<float*>(reduce_scratch_.data()), ReduceOp::sum);
}

double Runner::evaluate(const Batch& batch) {
  const int stage = c_->coord.pp, stages = c_->grid.shape().pp;
  if (!recv_.empty()) {
    Message x = message(recv_elems_);
    recv(x, stage - 1);
    unpack(x, tensors(recv_));
  }
  load(batch);
  executor_->forward(false);
  double loss = 0;
  if (stage == stages - 1) {
    loss = executor_->read_scalar(graph_.loss);
  } else {
    Message y = message(send_elems_);
    pack(y, tensors(send_));
    send(y, stage + 1);
  }
  all_reduce_scalar(*c_->comms.pp, loss);
  all_reduce_scalar(*c_->comms.dp, loss);
  // With label counts each rank's loss is its share of the global mean already.
  return loss_is_share_ ? loss : loss / c_->grid.shape().dp;
}

// ---- layout-independent state ------------------------------------------------------------------

void Runner::gather_full(const std::vector<float>& local, std::vector<float>& full) const {
  full.assign(static_cast<size_t>(n_full_), 0.0f);
  if (c_->coord.dp == 0)
    for (int k = 0; k < n_model_params_; ++k) {
      if (!origins_[k].owner) continue;
      const size_t base = graph_.params[k].storage;
      for (const ParamRun& run : origins_[k].runs)
        std::memcpy(full.data() + run.full, local.data() + base + run.local, run.count * sizeof(float));
    }
  // Every element has exactly one writer and zeros elsewhere: the sum is exact.
  DeviceBuffer scratch;  // a device communicator's (checkpoints only: not kept)
  all_reduce_host(backend_, scratch, c_->world, full.data(), full.size(), DType::f32);
}

std::vector<float> Runner::parameters() const {
  std::vector<float> full;
  gather_full(optimizer_->parameters(), full);
  return full;
}

void Runner::set_parameters(const std::vector<float>& flat) {
  if (flat.size() != static_cast<size_t>(n_full_))
    user_error("parameters: ", flat.size(), " values for a model of ", n_full_);
  optimizer_->set_parameters(
      scatter_full(graph_, origins_, n_model_params_, flat, static_cast<size_t>(graph_.storage_size())));
}

OptimizerState Runner::optimizer_state() const {
  const OptimizerState local = optimizer_->state();
  OptimizerState s;
  s.steps = local.steps;
  gather_full(local.m, s.m);
  gather_full(local.v, s.v);
  return s;
}

void Runner::set_optimizer_state(const OptimizerState& s) {
  const size_t n = static_cast<size_t>(n_full_);
  if (s.m.size() != n || s.v.size() != n || s.steps < 0)
    user_error("optimizer state: ", s.m.size(), "/", s.v.size(), " moments for a model of ", n, " parameters");
  const size_t storage = static_cast<size_t>(graph_.storage_size());
  OptimizerState local;
  local.steps = s.steps;
  local.m = scatter_full(graph_, origins_, n_model_params_, s.m, storage);
  local.v = scatter_full(graph_, origins_, n_model_params_, s.v, storage);
  optimizer_->set_state(local);
}

// One line per rank and step (FERRY_RANK_LOG=1): replicas that trained in step print the same
// loss and the same hash of their parameters.
void Runner::log_rank(const StepResult& r) const {
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the bytes of this rank's parameters
  const Tensor params = executor_->params();
  std::vector<unsigned char> bytes(n_local_ * dtype_size(params.dtype));  // the working copy (bf16 on CUDA)
  backend_.download(bytes.data(), params.data, bytes.size());
  for (unsigned char b : bytes) h = (h ^ b) * 1099511628211ull;
  std::fprintf(stderr, "ferry-rank: step %d rank %d tp %d dp %d pp %d loss %.9g params %016llx\n", steps_,
               c_->world.rank(), c_->coord.tp, c_->coord.dp, c_->coord.pp, r.loss, static_cast<unsigned long long>(h));
}

}  // namespace ferry::parallel
