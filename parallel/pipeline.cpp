// parallel/pipeline.cpp — cutting the graph into stages, and the pipe_send op.
#include "parallel/pipeline.h"

#include <algorithm>
#include <mutex>
#include <set>

#include "engine/autodiff.h"
#include "engine/backend.h"
#include "base/error.h"
#include "base/setting_error.h"
#include "engine/ops/ops.h"

namespace ferry::parallel {

void register_pipeline_ops() {
  static std::once_flag once;
  std::call_once(once, [] {
    // pipe_send(sent_0 … sent_{n-1}, dgrad_0 … dgrad_{n-1}) -> scalar; attr n.
    OpDef send;
    send.name = "pipe_send";
    send.infer = [](const Graph& g, const Node& n) {
      const int k = n.attrs.i("n");
      FERRY_CHECK(k > 0 && static_cast<int>(n.in.size()) == 2 * k, "pipe_send takes n values and n gradients");
      for (int i = 0; i < k; ++i)
        FERRY_CHECK(g.values[n.in[i]].shape == g.values[n.in[k + i]].shape, "pipe_send gradient shape");
      return std::vector<OutputSpec>{{{1}, g.values[n.in[0]].dtype}};
    };
    send.backward = [](Autodiff& ad, int i) {
      const Node& n = ad.node(i);
      FERRY_CHECK(ad.grad_of(n.out[0]) == Autodiff::kSeed, "pipe_send must be the root of autodiff");
      const int k = n.attrs.i("n");
      for (int j = 0; j < k; ++j)
        if (ad.needs_grad(n.in[j])) ad.contribute(n.in[j], n.in[k + j]);
    };
    // Its forward writes a zero, in the backend's memory and stream order (so the same kernel
    // serves the CUDA backend, where a stage's scalar is bf16 in device memory).
    send.cpu = [](KernelCall& c) { c.backend.zero(c.out[0].data, c.out[0].nbytes()); };
    register_op(send);
    set_op_kernel("pipe_send", Device::CUDA, send.cpu);
  });
}

std::vector<std::pair<int, int>> stage_layers(int n_layer, int pp) {
  if (pp < 1 || n_layer < pp) setting_error("pp", pp, ": the model's ", n_layer, " layers cannot fill ", pp, " stages");
  std::vector<std::pair<int, int>> r;
  int first = 0;
  for (int s = 0; s < pp; ++s) {
    const int n = n_layer / pp + (s < n_layer % pp ? 1 : 0);
    r.emplace_back(first, first + n);
    first += n;
  }
  return r;
}

std::vector<int> stage_of_nodes(const Graph& g, int n_layer, int pp) {
  const auto ranges = stage_layers(n_layer, pp);
  std::vector<int> layer_stage(n_layer);
  for (int s = 0; s < pp; ++s)
    for (int l = ranges[s].first; l < ranges[s].second; ++l) layer_stage[l] = s;
  std::vector<int> stage(g.num_forward_nodes, 0);
  for (int i = 0; i < g.num_forward_nodes; ++i) {
    int s = 0;
    for (int v : g.nodes[i].in) {
      if (v < 0) continue;
      const Value& val = g.values[v];
      if (val.producer >= 0) s = std::max(s, stage[val.producer]);
      if (val.role == ValueRole::Param && g.params[val.param].layer >= 0)
        s = std::max(s, layer_stage[g.params[val.param].layer]);
    }
    stage[i] = s;
  }
  return stage;
}

PipelineStage cut_pipeline_stage(const Graph& src, const std::vector<int>& node_stage, int stage, int pp) {
  register_pipeline_ops();
  const int nv = static_cast<int>(src.values.size());
  // Producer stage and the latest consumer stage of every activation.
  std::vector<int> last_use(nv, -1);
  for (int i = 0; i < src.num_forward_nodes; ++i)
    for (int v : src.nodes[i].in)
      if (v >= 0) last_use[v] = std::max(last_use[v], node_stage[i]);
  auto crossing = [&](int boundary) {  // activations made before `boundary` and used at or after it
    std::vector<int> x;
    for (int v = 0; v < nv; ++v) {
      const int p = src.values[v].producer;
      if (p >= 0 && p < src.num_forward_nodes && node_stage[p] < boundary && last_use[v] >= boundary) x.push_back(v);
    }
    return x;
  };

  PipelineStage st;
  Graph& g = st.graph;
  auto& map = st.value_map;
  std::set<int> used;
  for (int i = 0; i < src.num_forward_nodes; ++i)
    if (node_stage[i] == stage)
      for (int v : src.nodes[i].in)
        if (v >= 0) used.insert(v);
  for (size_t k = 0; k < src.params.size(); ++k) {
    const ParamInfo& p = src.params[k];
    if (!used.count(p.value)) continue;
    const Value& v = src.values[p.value];
    map[p.value] = g.add_param(p.name, v.shape, v.dtype, p.weight_decay, p.layer, p.padded_rows);
    g.params.back().trainable = p.trainable;
    g.params.back().lr_scale = p.lr_scale;
    st.param_source.push_back(static_cast<int>(k));
  }
  st.n_model_params = static_cast<int>(g.params.size());
  if (stage > 0)
    for (int v : crossing(stage)) {
      const Value& val = src.values[v];
      map[v] = g.add_param("recv." + val.name, val.shape, val.dtype, false, -1);
      st.recv.push_back(map[v]);
    }
  for (int v : used)
    if (src.values[v].role == ValueRole::Input) map[v] = g.add_input(src.values[v].name, src.values[v].shape, src.values[v].dtype);

  for (int i = 0; i < src.num_forward_nodes; ++i) {
    if (node_stage[i] != stage) continue;
    const Node& n = src.nodes[i];
    std::vector<int> in;
    for (int v : n.in) in.push_back(v < 0 ? -1 : map.at(v));
    const auto outs = g.add(n.op, in, n.attrs, src.node_name(n));
    for (size_t k = 0; k < outs.size(); ++k)
      if (n.out[k] >= 0) map[n.out[k]] = outs[k];
  }

  if (stage < pp - 1) {
    std::vector<int> in;
    for (int v : crossing(stage + 1)) st.send.push_back(map.at(v));
    for (int v : crossing(stage + 1)) {
      const Value& val = src.values[v];
      st.send_grad.push_back(g.add_input("dgrad." + val.name, val.shape, val.dtype));
    }
    FERRY_CHECK(!st.send.empty(), "stage ", stage, " sends nothing to the next");
    in = st.send;
    in.insert(in.end(), st.send_grad.begin(), st.send_grad.end());
    g.loss = g.add("pipe_send", in, {{"n", double(st.send.size())}}, "pipe_send")[0];
    g.mark_output(g.loss);
  } else {
    FERRY_CHECK(src.loss >= 0 && map.count(src.loss), "the last stage must hold the loss");
    g.loss = map.at(src.loss);
    g.mark_output(g.loss);
  }
  return st;
}

}  // namespace ferry::parallel
