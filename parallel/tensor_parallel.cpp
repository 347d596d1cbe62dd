// parallel/tensor_parallel.cpp — the rewrite (see tensor_parallel.h for the layout it produces).
#include "parallel/tensor_parallel.h"

#include <algorithm>
#include <mutex>
#include <set>

#include "base/error.h"
#include "base/setting_error.h"

namespace ferry::parallel {

namespace {

enum class Split { replicated, rank0_only, vocab_rows, column, row };

struct ParamSplit {
  Split split = Split::replicated;
  int parts = 1;  // column: q, k and v are split separately (3 parts)
};

bool ends_with(const std::string& s, const char* suffix) {
  const std::string suf(suffix);
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

ParamSplit split_of(const std::string& name) {
  if (name == "wte" || name == "lm_head.weight") return {Split::vocab_rows};
  if (name == "wpe") return {Split::rank0_only};
  // LoRA adapters follow their matrix: a column-parallel one's up-projection B is split like its
  // rows (its down-projection A stays replicated), a row-parallel one's A like its columns (B stays
  // replicated); the rewrite below then needs no rule of its own for them.
  if (ends_with(name, "attn.qkv.lora_b")) return {Split::column, 3};
  if (ends_with(name, "mlp.fc.lora_b")) return {Split::column, 1};
  if (ends_with(name, "attn.proj.lora_a") || ends_with(name, "mlp.proj.lora_a")) return {Split::row};
  if (ends_with(name, "attn.qkv.weight") || ends_with(name, "attn.qkv.bias")) return {Split::column, 3};
  if (ends_with(name, "mlp.fc.weight") || ends_with(name, "mlp.fc.bias")) return {Split::column, 1};
  if (ends_with(name, "attn.proj.weight") || ends_with(name, "mlp.proj.weight")) return {Split::row};
  if (ends_with(name, "attn.proj.bias") || ends_with(name, "mlp.proj.bias")) return {Split::rank0_only};
  return {Split::replicated};
}

}  // namespace

void check_tensor_parallel(const GptConfig& c, int t) {
  if (t < 1) setting_error("tp", t, ": must be at least 1");
  if (c.n_head % t != 0) setting_error("tp", t, ": model.n_head (", c.n_head, ") must be divisible by it");
}

int vocab_shard_rows(int vocab_size, int t) {
  const int rows = (vocab_size + t - 1) / t;
  return (rows + kVocabShardAlign - 1) / kVocabShardAlign * kVocabShardAlign;
}

TensorParallelGraph tensor_parallel_rewrite(const Graph& src, const GptConfig& c, int r, int t, int group) {
  check_tensor_parallel(c, t);
  register_tensor_parallel_ops();
  TensorParallelGraph out;
  Graph& g = out.graph;
  auto& map = out.value_map;
  const int shard_rows = vocab_shard_rows(c.vocab_size, t);
  // This rank's real vocabulary rows (the last ranks may hold fewer, or none: only padding).
  const int real_rows = std::clamp(c.vocab_size - r * shard_rows, 0, shard_rows);
  const double vocab_start = double(shard_rows) * r;

  // Parameters first, in the source order, each with the runs of the full buffer it holds.
  for (const ParamInfo& p : src.params) {
    const Value& v = src.values[p.value];
    const ParamSplit s = split_of(p.name);
    if (s.split == Split::rank0_only && r != 0) {
      map[p.value] = -1;
      continue;
    }
    Shape shape = v.shape;
    ParamOrigin o;
    o.owner = s.split != Split::replicated || r == 0;
    const size_t cols = shape.size() > 1 ? static_cast<size_t>(shape[1]) : 1;
    int64_t padded_rows = 0;
    switch (s.split) {
      case Split::replicated:
      case Split::rank0_only:
        FERRY_CHECK(p.padded_rows == 0, p.name, ": a replicated parameter with padding rows");
        o.runs.push_back({0, p.offset, static_cast<size_t>(p.numel)});
        break;
      case Split::vocab_rows: {
        // Rows [r·R, (r+1)·R) of the vocabulary, those at or beyond vocab_size padding (the
        // single-process graph's own padding, padded_vocab_size, plays no part here).
        shape[0] = shard_rows;
        padded_rows = shard_rows - real_rows;
        if (real_rows > 0) o.runs.push_back({0, p.offset + size_t(r) * shard_rows * cols, size_t(real_rows) * cols});
        break;
      }
      case Split::column: {
        const size_t part_rows = static_cast<size_t>(shape[0]) / s.parts, mine = part_rows / t;
        FERRY_CHECK(part_rows % t == 0, p.name, " rows not divisible by tp");
        shape[0] = static_cast<int64_t>(mine * s.parts);
        for (int k = 0; k < s.parts; ++k)
          o.runs.push_back({k * mine * cols, p.offset + (k * part_rows + r * mine) * cols, mine * cols});
        break;
      }
      case Split::row: {
        const size_t mine = cols / t;
        FERRY_CHECK(cols % t == 0, p.name, " columns not divisible by tp");
        shape[1] = static_cast<int64_t>(mine);
        for (size_t row = 0; row < static_cast<size_t>(shape[0]); ++row)
          o.runs.push_back({row * mine, p.offset + row * cols + r * mine, mine});
        break;
      }
    }
    const int nv = g.add_param(p.name, shape, v.dtype, p.weight_decay, p.layer, padded_rows);
    ParamInfo& np = g.params.back();
    np.trainable = p.trainable;
    np.lr_scale = p.lr_scale;
    map[p.value] = nv;
    out.origins.push_back(std::move(o));
  }
  for (size_t v = 0; v < src.values.size(); ++v)
    if (src.values[v].role == ValueRole::Input) map[int(v)] = g.add_input(src.values[v].name, src.values[v].shape, src.values[v].dtype);

  auto m = [&](int v) { return v < 0 ? -1 : map.at(v); };
  auto split_kind = [&](int v) { return src.values[v].role == ValueRole::Param ? split_of(src.params[src.values[v].param].name).split : Split::replicated; };
  const Attrs group_attr{{"group", double(group)}};
  std::set<int> vocab_logits;  // source values: logits over this rank's vocabulary shard

  for (int i = 0; i < src.num_forward_nodes; ++i) {
    const Node& n = src.nodes[i];
    const std::string name = src.node_name(n);
    std::vector<int> in;
    for (int v : n.in) in.push_back(m(v));
    std::vector<int> outs;
    if (n.op == "embedding") {
      const int e = g.add("vocab_parallel_embedding", in, {{"vocab_start", vocab_start}}, name + ".shard")[0];
      outs = g.add("tp_reduce", {e}, group_attr, name);
    } else if (n.op == "matmul" && (split_kind(n.in[1]) == Split::column || split_kind(n.in[1]) == Split::vocab_rows)) {
      in[0] = g.add("tp_copy", {in[0]}, group_attr, name + ".in")[0];
      outs = g.add("matmul", in, n.attrs, name);
      if (split_kind(n.in[1]) == Split::vocab_rows) vocab_logits.insert(n.out[0]);
    } else if (n.op == "matmul" && split_kind(n.in[1]) == Split::row) {
      const int partial = g.add("matmul", in, n.attrs, name + ".partial")[0];
      outs = g.add("tp_reduce", {partial}, group_attr, name);
    } else if (n.op == "attention") {
      Attrs a = n.attrs;
      a.values["n_head"] = double(n.attrs.i("n_head") / t);
      outs = g.add("attention", in, a, name);
    } else if (n.op == "cross_entropy" && vocab_logits.count(n.in[0])) {
      // Over the vocabulary shard (a language-model head); a task head's replicated logits keep
      // the plain cross_entropy below.
      Attrs a = n.attrs;
      a.values["vocab_start"] = vocab_start;
      a.values["group"] = double(group);
      outs = g.add("vocab_parallel_cross_entropy", in, a, name);
    } else {
      outs = g.add(n.op, in, n.attrs, name);
    }
    FERRY_CHECK(outs.size() == n.out.size(), "rewrite of ", n.op, " changed its outputs");
    for (size_t k = 0; k < outs.size(); ++k)
      if (n.out[k] >= 0) map[n.out[k]] = outs[k];
  }
  for (size_t v = 0; v < src.values.size(); ++v)
    if (src.values[v].role == ValueRole::Output) g.mark_output(map.at(int(v)));
  if (src.loss >= 0) g.loss = map.at(src.loss);
  return out;
}

std::vector<ParamOrigin> identity_origins(const Graph& g) {
  std::vector<ParamOrigin> o;
  for (const ParamInfo& p : g.params) o.push_back({{{0, p.offset, static_cast<size_t>(p.numel)}}, true});
  return o;
}

}  // namespace ferry::parallel
