// parallel/step_factory.cpp — see step_factory.h.
#include "parallel/step_factory.h"

#include <set>

#include "base/error.h"
#include "parallel/job_world.h"
#include "parallel/pipeline.h"
#include "parallel/tensor_parallel.h"

namespace ferry::parallel {

namespace {

// Under DP every cross-entropy node (cross_entropy, or vocab_parallel_cross_entropy under TP) takes
// a third input, the global count of labelled rows, so that each rank's loss is its share of the
// global mean (engine/ops/cross_entropy.cpp).
void add_label_counts(RankGraph& r, const std::map<int, int>& full_of_stage_input) {
  Graph& g = r.graph;
  for (int i = 0; i < g.num_forward_nodes; ++i) {
    Node& n = g.nodes[i];
    if ((n.op != "cross_entropy" && n.op != "vocab_parallel_cross_entropy") || n.in.size() != 2) continue;
    auto it = full_of_stage_input.find(n.in[1]);
    const std::string loss = g.values[n.out[1]].name;
    FERRY_CHECK(it != full_of_stage_input.end(), "cross_entropy ", loss, ": its targets are not a graph input");
    const int count = g.add_input("label_count." + loss, {1}, ferry::DType::I32);
    g.nodes[i].in.push_back(count);
    r.label_counts.push_back({count, it->second, g.nodes[i].attrs.i("ignore_index", -1)});
  }
}

}  // namespace

RankGraph prepare_rank_graph(const Graph& full, const GptConfig& model, RunnerComms& c, bool label_counts) {
  const GridShape shape = c.grid.shape();
  check_tensor_parallel(model, shape.tp);
  stage_layers(model.n_layer, shape.pp);  // validates the stage count against the layers
  RankGraph r;
  r.n_full = full.param_count();

  TensorParallelGraph tpg;
  if (shape.tp > 1) {
    tpg = tensor_parallel_rewrite(full, model, c.coord.tp, shape.tp, c.tp_group->id());
  } else {
    tpg.graph = full;
    tpg.origins = identity_origins(full);
    for (size_t v = 0; v < full.values.size(); ++v) tpg.value_map[int(v)] = int(v);
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
    st = cut_pipeline_stage(tpg.graph, node_stage, c.coord.pp, shape.pp);
  } else {
    st.graph = tpg.graph;
    for (size_t p = 0; p < tpg.graph.params.size(); ++p) st.param_source.push_back(static_cast<int>(p));
    st.n_model_params = static_cast<int>(tpg.graph.params.size());
    for (size_t v = 0; v < tpg.graph.values.size(); ++v) st.value_map[int(v)] = int(v);
  }
  r.graph = std::move(st.graph);
  r.n_model_params = st.n_model_params;
  r.recv = st.recv;
  r.send = st.send;
  r.send_grad = st.send_grad;
  bool any_tied = false;
  for (int k = 0; k < r.n_model_params; ++k) {
    const int src = st.param_source[k];
    ParamOrigin o = tpg.origins[src];
    o.owner = o.owner && first_stage[src] == c.coord.pp;
    r.origins.push_back(std::move(o));
    if (stages_using[src] > 1) r.tied_params.push_back(k);
  }
  for (int p = 0; p < static_cast<int>(tpg.graph.params.size()); ++p) any_tied = any_tied || stages_using[p] > 1;
  if (any_tied) {
    const bool member = c.coord.pp == 0 || c.coord.pp == shape.pp - 1;
    c.tie = c.comms.pp->split(member ? 0 : -1, c.coord.pp);
  }
  // Every input of the single-process graph that this rank's graph reads.
  std::map<int, int> full_of_stage;
  for (size_t v = 0; v < full.values.size(); ++v) {
    if (full.values[v].role != ValueRole::Input) continue;
    auto t = tpg.value_map.find(int(v));
    if (t == tpg.value_map.end()) continue;
    if (auto it = st.value_map.find(t->second); it != st.value_map.end()) {
      r.input_map[int(v)] = it->second;
      full_of_stage[it->second] = int(v);
    }
  }
  if (label_counts && shape.dp > 1) {
    add_label_counts(r, full_of_stage);
    r.loss_is_share = true;  // on every stage, the ones without a loss too: they report the same sum
  }
  return r;
}

std::unique_ptr<Runner> make_local_runner(Graph g, Backend& backend, AdamWConfig adamw, size_t memory_limit) {
  RankGraph r;
  r.n_full = g.param_count();
  r.origins = identity_origins(g);
  r.n_model_params = static_cast<int>(g.params.size());
  for (size_t v = 0; v < g.values.size(); ++v)
    if (g.values[v].role == ValueRole::Input) r.input_map[int(v)] = int(v);
  r.graph = std::move(g);
  RunnerOptions o;
  o.adamw = adamw;
  o.memory_limit = memory_limit;
  return std::make_unique<Runner>(std::move(r), std::make_unique<RunnerComms>(), backend, o);
}

std::unique_ptr<Runner> make_gpt_runner(const GptConfig& model, int batch, int seq_len, int micro_batches,
                                        AdamWConfig adamw, ParallelLayout layout, Communicator& world,
                                        Backend& backend, size_t memory_limit) {
  if (micro_batches < 1) user_error("train.grad_accum must be at least 1");
  auto comms = std::make_unique<RunnerComms>(world, RankGrid::from_tp_pp(layout.tp, layout.pp, world.size()));
  GptBuildOptions opt;
  opt.batch = batch;
  opt.seq_len = seq_len;
  // The CUDA backend runs bf16 graphs (fp32 master weights live in its optimizer); the CPU runs fp32.
  opt.dtype = backend.device() == Device::CUDA ? ferry::DType::BF16 : ferry::DType::F32;
  // Every row is a target: 1/(dp · micro-batches) makes the DP sum one process's mean.
  opt.loss_scale = 1.0f / static_cast<float>(micro_batches * comms->grid.shape().dp);
  const GptGraph full = build_gpt(model, opt);
  RankGraph r = prepare_rank_graph(full.graph, model, *comms, false);
  RunnerOptions o;
  o.adamw = adamw;
  o.layout = layout;
  o.micro_batches = micro_batches;
  o.memory_limit = memory_limit;
  return std::make_unique<Runner>(std::move(r), std::move(comms), backend, o);
}

std::unique_ptr<Runner> make_task_runner(Graph full, const GptConfig& model, AdamWConfig adamw, ParallelLayout layout,
                                         Communicator& world, Backend& backend, size_t memory_limit) {
  auto comms = std::make_unique<RunnerComms>(world, RankGrid::from_tp_pp(layout.tp, layout.pp, world.size()));
  RankGraph r = prepare_rank_graph(full, model, *comms, true);
  RunnerOptions o;
  o.adamw = adamw;
  o.layout = layout;
  o.memory_limit = memory_limit;
  return std::make_unique<Runner>(std::move(r), std::move(comms), backend, o);
}

GptStep make_gpt_step(const RunConfig& c, Backend& backend) {
  const TrainConfig& t = c.train;
  backend.select_attention(t.attention);
  GptBuildOptions opt;  // the single-process graph's input ids and parameter table
  opt.batch = t.batch_size;
  opt.seq_len = t.seq_len;
  const GptGraph model = build_gpt(c.model, opt);
  GptStep s;
  s.tokens = model.tokens;
  s.targets = model.targets;
  s.n_params = model.graph.param_count();
  s.params = model.graph.params;
  ParallelLayout layout;
  layout.tp = c.parallel.tp;
  layout.pp = c.parallel.pp;
  layout.zero1 = c.parallel.zero1;
  const size_t memory_limit = static_cast<size_t>(t.memory_limit_gb * (1ull << 30));
  // train.batch_size rows per DP rank and micro-batch; one process is the world of one.
  s.runner = make_gpt_runner(c.model, t.batch_size, t.seq_len, t.grad_accum, t.adamw, layout, job_world(), backend,
                             memory_limit);
  return s;
}

}  // namespace ferry::parallel
