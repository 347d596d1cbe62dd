// parallel/parallel_step.cpp
#include "parallel/parallel_step.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>

#include "engine/autodiff.h"
#include "base/error.h"
#include "parallel/pipeline.h"
#include "parallel/tensor_parallel.h"

namespace ferry::parallel {

ParallelGptStep::ParallelGptStep(const GptConfig& model, int batch, int seq_len, int micro_batches, AdamWConfig adamw,
                                 ParallelLayout layout, Communicator& world, Backend& backend, size_t memory_limit)
    : world_(world),
      grid_(RankGrid::from_tp_pp(layout.tp, layout.pp, world.size())),
      coord_(grid_.coord_of(world.rank())),
      backend_(backend),
      layout_(layout),
      micro_batches_(micro_batches),
      clip_(adamw.grad_clip) {
  FERRY_CHECK(backend.device() == Device::CPU, "parallel step runners run on the CPU backend in this build");
  if (micro_batches < 1) user_error("train.grad_accum must be at least 1");
  const GridShape shape = grid_.shape();
  check_tensor_parallel(model, shape.tp);
  stage_layers(model.n_layer, shape.pp);  // validates --pp against the layers
  comms_ = make_grid_communicators(grid_, world);
  tp_group_ = std::make_unique<GroupRegistration>(*comms_.tp);

  GptBuildOptions opt;
  opt.batch = batch;
  opt.seq_len = seq_len;
  opt.loss_scale = 1.0f / static_cast<float>(micro_batches * shape.dp);
  GptGraph full = build_gpt(model, opt);
  n_full_ = full.graph.param_count();
  full_tokens_ = full.tokens;
  full_targets_ = full.targets;

  TensorParallelGraph tpg;
  if (shape.tp > 1) {
    tpg = tensor_parallel_rewrite(full.graph, model, coord_.tp, shape.tp, tp_group_->id());
  } else {
    tpg.graph = full.graph;
    tpg.origins = identity_origins(full.graph);
    for (size_t v = 0; v < full.graph.values.size(); ++v) tpg.value_map[int(v)] = int(v);
  }

  PipelineStage st;
  std::vector<int> first_stage(tpg.graph.params.size(), 0), stages_using(tpg.graph.params.size(), 0);
  if (shape.pp > 1) {
    const auto node_stage = stage_of_nodes(tpg.graph, model.n_layer, shape.pp);
    std::vector<std::set<int>> users(tpg.graph.params.size());
    for (int i = 0; i < tpg.graph.num_forward_nodes; ++i)
      for (int v : tpg.graph.nodes[i].in)
        if (v >= 0 && tpg.graph.values[v].role == ValueRole::Param) users[tpg.graph.values[v].param].insert(node_stage[i]);
    for (size_t p = 0; p < users.size(); ++p) {
      first_stage[p] = users[p].empty() ? 0 : *users[p].begin();
      stages_using[p] = static_cast<int>(users[p].size());
      FERRY_CHECK(users[p].size() <= 1 || (users[p].size() == 2 && *users[p].begin() == 0 &&
                                           *users[p].rbegin() == shape.pp - 1),
                  "parameter ", tpg.graph.params[p].name, " shared by stages other than the first and the last");
    }
    st = cut_pipeline_stage(tpg.graph, node_stage, coord_.pp, shape.pp);
  } else {
    st.graph = tpg.graph;
    for (size_t p = 0; p < tpg.graph.params.size(); ++p) st.param_source.push_back(static_cast<int>(p));
    st.n_model_params = static_cast<int>(tpg.graph.params.size());
    for (size_t v = 0; v < tpg.graph.values.size(); ++v) st.value_map[int(v)] = int(v);
  }
  graph_ = std::move(st.graph);
  n_model_params_ = st.n_model_params;
  recv_ = st.recv;
  send_ = st.send;
  send_grad_ = st.send_grad;
  bool any_tied = false;
  for (int k = 0; k < n_model_params_; ++k) {
    const int src = st.param_source[k];
    ParamOrigin o = tpg.origins[src];
    o.owner = o.owner && first_stage[src] == coord_.pp;
    origins_.push_back(std::move(o));
    if (stages_using[src] > 1) tied_params_.push_back(k);
  }
  // The model parameters' share of the executor's flat buffers (storage order, engine/graph.h);
  // received pipeline activations (parameters n_model_params_ on) come after them.
  if (n_model_params_ > 0) {
    const ParamInfo& last = graph_.params[n_model_params_ - 1];
    n_local_ = last.storage + static_cast<size_t>(last.storage_numel);
  }
  for (int p = 0; p < static_cast<int>(tpg.graph.params.size()); ++p) any_tied = any_tied || stages_using[p] > 1;
  if (any_tied) {
    const bool member = coord_.pp == 0 || coord_.pp == shape.pp - 1;
    tie_ = comms_.pp->split(member ? 0 : -1, coord_.pp);
  }
  for (int v : {full_tokens_, full_targets_}) {
    if (v < 0) continue;
    const int t = tpg.value_map.at(v);
    if (auto it = st.value_map.find(t); it != st.value_map.end()) input_map_[v] = it->second;
  }

  derive_backward(graph_);
  const ShardRange shard = layout.zero1 ? zero1_shard(n_local_, shape.dp, coord_.dp) : ShardRange{0, n_local_};
  const size_t state_bytes = 2 * shard.size() * sizeof(float);
  executor_ = std::make_unique<Executor>(graph_, backend, state_bytes, memory_limit);
  verify_plan(graph_, executor_->plan());
  std::vector<bool> owned;
  for (const auto& o : origins_) owned.push_back(o.owner);
  optimizer_ = std::make_unique<ShardedAdamW>(graph_, n_model_params_, owned, shard, adamw);
  if (shape.dp > 1 && !layout.zero1)
    buckets_ = std::make_unique<GradientBuckets>(graph_, n_model_params_, layout.bucket_elems, *comms_.dp);
}

ParallelGptStep::~ParallelGptStep() = default;

void ParallelGptStep::load(const Batch& b) {
  for (const auto& [value, data] : b.inputs) {
    auto it = input_map_.find(value);
    if (it == input_map_.end()) continue;  // another stage's input
    executor_->set_input(it->second, data.data(), data.size() * sizeof(int32_t));
  }
}

// ---- pipeline ----------------------------------------------------------------------------------

void ParallelGptStep::write_received(const std::vector<float>& data) {
  size_t at = 0;
  for (int v : recv_) {
    Tensor t = executor_->tensor(v);
    std::memcpy(t.data, data.data() + at, t.nbytes());
    at += static_cast<size_t>(t.numel());
  }
  FERRY_CHECK(at == data.size(), "pipeline message of ", data.size(), " values for ", at);
}

std::vector<float> ParallelGptStep::pack(const std::vector<int>& values) const {
  std::vector<float> out;
  for (int v : values) {
    Tensor t = executor_->tensor(v);
    out.insert(out.end(), t.as<float>(), t.as<float>() + t.numel());
  }
  return out;
}

std::vector<float> ParallelGptStep::received_grads() const {
  std::vector<float> out;
  for (int v : recv_) {
    const ParamInfo& p = graph_.params[graph_.values[v].param];
    out.insert(out.end(), grads_ptr() + p.storage, grads_ptr() + p.storage + p.numel);
  }
  return out;
}

std::vector<float> ParallelGptStep::forward_micro(const Batch& b, const std::vector<float>& received,
                                                  double& loss_sum) {
  if (!recv_.empty()) write_received(received);
  load(b);
  executor_->forward(true);
  const bool last = coord_.pp == grid_.shape().pp - 1;
  if (last) loss_sum += executor_->read_scalar(graph_.loss);
  std::vector<float> sent = last ? std::vector<float>{} : pack(send_);
  // Keep this micro-batch's activations for its backward; the next forward gets a spare arena.
  InFlight f;
  if (spare_arenas_.empty()) {
    f.arena = DeviceBuffer(backend_, executor_->plan().arena_bytes);
  } else {
    f.arena = std::move(spare_arenas_.back());
    spare_arenas_.pop_back();
  }
  executor_->swap_arena(f.arena);
  f.received = received;
  in_flight_.push_back(std::move(f));
  return sent;
}

std::vector<float> ParallelGptStep::backward_micro(const std::vector<float>& dgrad, bool last) {
  FERRY_CHECK(!in_flight_.empty(), "backward without a forward in flight");
  InFlight f = std::move(in_flight_.front());
  in_flight_.pop_front();
  executor_->swap_arena(f.arena);
  spare_arenas_.push_back(std::move(f.arena));
  if (!recv_.empty()) {
    write_received(f.received);  // later forwards overwrote them; backward reads its inputs
    for (int v : recv_) {
      const ParamInfo& p = graph_.params[graph_.values[v].param];
      std::memset(grads_ptr() + p.storage, 0, static_cast<size_t>(p.numel) * sizeof(float));
    }
  }
  size_t at = 0;
  for (int v : send_grad_) {
    const size_t bytes = executor_->tensor(v).nbytes();
    executor_->set_input(v, dgrad.data() + at, bytes);
    at += bytes / sizeof(float);
  }
  if (last && buckets_) executor_->set_after_node([this](int node) { buckets_->on_node(node, grads_ptr()); });
  executor_->backward();
  executor_->set_after_node({});
  return recv_.empty() ? std::vector<float>{} : received_grads();
}

double ParallelGptStep::run_1f1b(const std::vector<Batch>& micro) {
  Communicator& pp = *comms_.pp;
  const int stage = coord_.pp, stages = grid_.shape().pp, M = static_cast<int>(micro.size());
  const bool first = stage == 0, last = stage == stages - 1;
  size_t recv_elems = 0, send_elems = 0;
  for (int v : recv_) recv_elems += static_cast<size_t>(graph_.values[v].shape.empty() ? 1 : numel(graph_.values[v].shape));
  for (int v : send_) send_elems += static_cast<size_t>(numel(graph_.values[v].shape));
  auto recv_forward = [&] {
    std::vector<float> x(recv_elems);
    if (!first) pp.recv(x.data(), x.size(), DType::f32, stage - 1);
    return x;
  };
  auto send_forward = [&](const std::vector<float>& y) {
    if (!last) pp.send(y.data(), y.size(), DType::f32, stage + 1);
  };
  auto send_forward_recv_backward = [&](const std::vector<float>& y) {
    std::vector<float> dy(send_elems);
    if (!last) pp.send_recv(y.data(), y.size(), stage + 1, dy.data(), dy.size(), stage + 1, DType::f32);
    return dy;
  };
  auto send_backward_recv_forward = [&](const std::vector<float>& dx) {
    std::vector<float> x(recv_elems);
    if (!first) pp.send_recv(dx.data(), dx.size(), stage - 1, x.data(), x.size(), stage - 1, DType::f32);
    return x;
  };
  auto send_backward = [&](const std::vector<float>& dx) {
    if (!first) pp.send(dx.data(), dx.size(), DType::f32, stage - 1);
  };
  auto recv_backward = [&] {
    std::vector<float> dy(send_elems);
    if (!last) pp.recv(dy.data(), dy.size(), DType::f32, stage + 1);
    return dy;
  };

  double loss_sum = 0;
  const int warmup = std::min(stages - stage - 1, M), remaining = M - warmup;
  int backward_done = 0;
  for (int i = 0; i < warmup; ++i) send_forward(forward_micro(micro[i], recv_forward(), loss_sum));
  std::vector<float> x = remaining > 0 ? recv_forward() : std::vector<float>{};
  for (int i = 0; i < remaining; ++i) {
    const std::vector<float> dy = send_forward_recv_backward(forward_micro(micro[warmup + i], x, loss_sum));
    const std::vector<float> dx = backward_micro(dy, ++backward_done == M);
    if (i == remaining - 1)
      send_backward(dx);
    else
      x = send_backward_recv_forward(dx);
  }
  for (int i = 0; i < warmup; ++i) send_backward(backward_micro(recv_backward(), ++backward_done == M));
  return loss_sum;
}

// ---- the step ----------------------------------------------------------------------------------

StepResult ParallelGptStep::train(const std::vector<Batch>& micro, float lr) {
  FERRY_CHECK(static_cast<int>(micro.size()) == micro_batches_, "the graph's loss scale was built for ",
              micro_batches_, " micro-batches, the step has ", micro.size());
  executor_->zero_grads();
  if (buckets_) buckets_->begin_step();
  double loss_sum = 0;
  if (grid_.shape().pp == 1) {
    for (size_t k = 0; k < micro.size(); ++k) {
      load(micro[k]);
      executor_->forward(true);
      loss_sum += executor_->read_scalar(graph_.loss);
      if (k + 1 == micro.size() && buckets_)
        executor_->set_after_node([this](int node) { buckets_->on_node(node, grads_ptr()); });
      executor_->backward();
      executor_->set_after_node({});
    }
  } else {
    loss_sum = run_1f1b(micro);
  }
  StepResult r;
  // The loss lives on the last stage (every TP rank of it has the whole value); the DP mean follows.
  double loss = loss_sum / static_cast<double>(micro.size());
  if (coord_.pp != grid_.shape().pp - 1) loss = 0;
  comms_.pp->all_reduce(&loss, 1, DType::f64, ReduceOp::sum);
  comms_.dp->all_reduce(&loss, 1, DType::f64, ReduceOp::sum);
  r.loss = loss / grid_.shape().dp;
  reduce_and_update(lr, r);
  ++steps_;
  if (std::getenv("FERRY_RANK_LOG")) log_rank(r);
  return r;
}

void ParallelGptStep::reduce_and_update(float lr, StepResult& r) {
  float* grads = grads_ptr();
  float* params = params_ptr();
  // The tied embedding: its two copies (first and last stage) get the sum of both gradients.
  auto tie = [&] {
    for (int k : tied_params_) {
      const ParamInfo& p = graph_.params[k];
      tie_->all_reduce(grads + p.storage, static_cast<size_t>(p.numel), DType::f32, ReduceOp::sum);
    }
  };
  const int dp = grid_.shape().dp;
  const ShardRange shard = optimizer_->shard();
  if (layout_.zero1) {
    tie();
    if (dp > 1) {
      std::vector<float> padded(shard.size() * dp, 0.0f), mine(shard.size());
      std::memcpy(padded.data(), grads, n_local_ * sizeof(float));
      comms_.dp->reduce_scatter(padded.data(), mine.data(), shard.size(), DType::f32, ReduceOp::sum);
      const size_t n = std::min(shard.end, n_local_) - std::min(shard.begin, n_local_);
      std::memcpy(grads + std::min(shard.begin, n_local_), mine.data(), n * sizeof(float));
    }
  } else {
    if (buckets_) buckets_->finish(grads);
    tie();
  }
  double sq = optimizer_->owned_norm_squared(grads);
  comms_.model->all_reduce(&sq, 1, DType::f64, ReduceOp::sum);
  if (layout_.zero1) comms_.dp->all_reduce(&sq, 1, DType::f64, ReduceOp::sum);
  r.grad_norm = std::sqrt(sq);
  // The same rule as engine/optim/adamw.cpp.
  float scale = 1.0f;
  if (clip_ > 0 && r.grad_norm > clip_) scale = static_cast<float>(clip_ / (r.grad_norm + 1e-6));
  optimizer_->update(params, grads, lr, scale);
  if (layout_.zero1 && dp > 1) {
    std::vector<float> padded(shard.size() * dp, 0.0f);
    std::memcpy(padded.data(), params, n_local_ * sizeof(float));
    comms_.dp->all_gather(padded.data() + shard.begin, padded.data(), shard.size(), DType::f32);
    std::memcpy(params, padded.data(), n_local_ * sizeof(float));
  }
}

double ParallelGptStep::evaluate(const Batch& batch) {
  Communicator& pp = *comms_.pp;
  const int stage = coord_.pp, stages = grid_.shape().pp;
  if (!recv_.empty()) {
    size_t n = 0;
    for (int v : recv_) n += static_cast<size_t>(numel(graph_.values[v].shape));
    std::vector<float> x(n);
    pp.recv(x.data(), n, DType::f32, stage - 1);
    write_received(x);
  }
  load(batch);
  executor_->forward(false);
  double loss = 0;
  if (stage == stages - 1) {
    loss = executor_->read_scalar(graph_.loss);
  } else {
    const std::vector<float> y = pack(send_);
    pp.send(y.data(), y.size(), DType::f32, stage + 1);
  }
  pp.all_reduce(&loss, 1, DType::f64, ReduceOp::sum);
  comms_.dp->all_reduce(&loss, 1, DType::f64, ReduceOp::sum);
  return loss / grid_.shape().dp;
}

// ---- layout-independent state ------------------------------------------------------------------

void ParallelGptStep::gather_full(const std::vector<float>& local, std::vector<float>& full) const {
  full.assign(static_cast<size_t>(n_full_), 0.0f);
  if (coord_.dp == 0)
    for (int k = 0; k < n_model_params_; ++k) {
      if (!origins_[k].owner) continue;
      const size_t base = graph_.params[k].storage;
      for (const ParamRun& run : origins_[k].runs)
        std::memcpy(full.data() + run.full, local.data() + base + run.local, run.count * sizeof(float));
    }
  // Every element has exactly one writer and zeros elsewhere: the sum is exact.
  world_.all_reduce(full.data(), full.size(), DType::f32, ReduceOp::sum);
}

std::vector<float> ParallelGptStep::parameters() const {
  std::vector<float> local(params_ptr(), params_ptr() + n_local_), full;
  gather_full(local, full);
  return full;
}

void ParallelGptStep::set_parameters(const std::vector<float>& flat) {
  if (flat.size() != static_cast<size_t>(n_full_))
    user_error("parameters: ", flat.size(), " values for a model of ", n_full_);
  float* params = params_ptr();
  for (int k = 0; k < n_model_params_; ++k)
    for (const ParamRun& run : origins_[k].runs)
      std::memcpy(params + graph_.params[k].storage + run.local, flat.data() + run.full, run.count * sizeof(float));
}

OptimizerState ParallelGptStep::optimizer_state() const {
  OptimizerState s;
  s.steps = optimizer_->steps_taken();
  const ShardRange shard = optimizer_->shard();
  auto local_of = [&](const std::vector<float>& moments) {
    std::vector<float> padded(shard.size() * (layout_.zero1 ? grid_.shape().dp : 1), 0.0f);
    if (layout_.zero1) {
      comms_.dp->all_gather(moments.data(), padded.data(), shard.size(), DType::f32);
    } else {
      padded = moments;
    }
    padded.resize(n_local_);
    return padded;
  };
  gather_full(local_of(optimizer_->m()), s.m);
  gather_full(local_of(optimizer_->v()), s.v);
  return s;
}

void ParallelGptStep::set_optimizer_state(const OptimizerState& s) {
  const size_t n = static_cast<size_t>(n_full_);
  if (s.m.size() != n || s.v.size() != n || s.steps < 0)
    user_error("optimizer state: ", s.m.size(), "/", s.v.size(), " moments for a model of ", n, " parameters");
  const ShardRange shard = optimizer_->shard();
  auto shard_of = [&](const std::vector<float>& full, std::vector<float>& moments) {
    std::vector<float> local(std::max(n_local_, shard.end), 0.0f);
    for (int k = 0; k < n_model_params_; ++k)
      for (const ParamRun& run : origins_[k].runs)
        std::memcpy(local.data() + graph_.params[k].storage + run.local, full.data() + run.full, run.count * sizeof(float));
    moments.assign(local.begin() + static_cast<std::ptrdiff_t>(shard.begin),
                   local.begin() + static_cast<std::ptrdiff_t>(shard.end));
  };
  shard_of(s.m, optimizer_->m());
  shard_of(s.v, optimizer_->v());
  optimizer_->set_steps_taken(s.steps);
}

// One line per rank and step (FERRY_RANK_LOG=1): replicas that trained in step print the same
// loss and the same hash of their parameters.
void ParallelGptStep::log_rank(const StepResult& r) const {
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the bytes of this rank's parameters
  const auto* bytes = reinterpret_cast<const unsigned char*>(params_ptr());
  for (size_t i = 0; i < n_local_ * sizeof(float); ++i) h = (h ^ bytes[i]) * 1099511628211ull;
  std::fprintf(stderr, "ferry-rank: step %d rank %d tp %d dp %d pp %d loss %.9g params %016llx\n", steps_,
               world_.rank(), coord_.tp, coord_.dp, coord_.pp, r.loss, static_cast<unsigned long long>(h));
}

}  // namespace ferry::parallel
