// engine/model/heads.cpp
#include "engine/model/heads.h"

#include "base/error.h"
#include "base/setting_error.h"

namespace ferry {

Pooling default_pooling(const GptConfig& c) { return c.causal ? Pooling::Last : Pooling::Mean; }

Pooling parse_pooling(const std::string& name) {
  if (name == "first") return Pooling::First;
  if (name == "last") return Pooling::Last;
  if (name == "mean") return Pooling::Mean;
  setting_error("pooling", "'", name, "' is not first, last or mean");
}

const char* pooling_name(Pooling p) {
  switch (p) {
    case Pooling::First: return "first";
    case Pooling::Last: return "last";
    default: return "mean";
  }
}

namespace {

struct Head {
  int labels = -1, logits = -1;
};

// One head's labels input and logits on the trunk's hidden states.
Head add_head(Graph& g, const Trunk& trunk, const HeadSpec& head, const TrunkOptions& o, const std::string& labels_name) {
  Head h;
  const int64_t B = o.batch, T = o.seq_len, C = g.values[trunk.hidden].shape[2];
  const std::string p = "head." + head.task + ".";
  switch (head.kind) {
    case HeadKind::LanguageModel:
      h.labels = g.add_input(labels_name.empty() ? "targets" : labels_name, {B, T}, DType::I32);
      h.logits = g.add("matmul", {trunk.hidden, trunk.lm_head}, {}, "lm_head")[0];
      break;
    case HeadKind::SequenceClassification: {
      if (head.n_classes < 2) user_error("task ", head.task, ": a classifier needs at least 2 classes");
      if (trunk.lengths < 0) user_error("sequence classification needs the lengths input (key_lengths)");
      h.labels = g.add_input(labels_name.empty() ? "labels" : labels_name, {B}, DType::I32);
      const int pooled = g.add("pool_tokens", {trunk.hidden, trunk.lengths},
                               {{"mode", static_cast<double>(head.pooling)}}, "pool." + head.task)[0];
      const int w = g.add_param(p + "weight", {head.n_classes, C}, o.dtype, true, -1);
      const int b = g.add_param(p + "bias", {head.n_classes}, o.dtype, false, -1);
      h.logits = g.add("matmul", {pooled, w, b}, {}, "classifier." + head.task)[0];
      break;
    }
    case HeadKind::TokenClassification: {
      if (head.n_classes < 2) user_error("task ", head.task, ": a tagger needs at least 2 tags");
      h.labels = g.add_input(labels_name.empty() ? "labels" : labels_name, {B, T}, DType::I32);
      const int w = g.add_param(p + "weight", {head.n_classes, C}, o.dtype, true, -1);
      const int b = g.add_param(p + "bias", {head.n_classes}, o.dtype, false, -1);
      h.logits = g.add("matmul", {trunk.hidden, w, b}, {}, "tagger." + head.task)[0];
      break;
    }
  }
  return h;
}

// A language model's logits are [B,T,Vp]: only the first vocab_size columns are classes.
Attrs loss_attrs(const GptConfig& c, const HeadSpec& head, float scale) {
  Attrs a{{"scale", scale}, {"ignore_index", kIgnoreLabel}};
  if (head.kind == HeadKind::LanguageModel) a.values["classes"] = c.vocab_size;
  return a;
}

Trunk add_trunk(Graph& g, const GptConfig& c, const std::vector<HeadSpec>& heads, const TrunkOptions& o) {
  TrunkOptions to = o;
  for (const HeadSpec& h : heads) to.lm_head = to.lm_head || h.kind == HeadKind::LanguageModel;
  return build_trunk(g, c, to);
}

}  // namespace

TaskGraph build_task_graph(const GptConfig& c, const HeadSpec& head, const TrunkOptions& o, float loss_scale) {
  TaskGraph m;
  Graph& g = m.graph;
  m.trunk = add_trunk(g, c, {head}, o);
  const Head h = add_head(g, m.trunk, head, o, "");
  m.labels = h.labels;
  m.logits = h.logits;
  auto ce = g.add("cross_entropy", {m.logits, m.labels}, loss_attrs(c, head, loss_scale), "loss");
  m.loss = ce[1];
  // Classifier logits are read after the step; a language model's [B,T,V] logits stay in place
  // under cross_entropy's gradient instead (the memory that dominates such a step).
  if (head.kind != HeadKind::LanguageModel) g.mark_output(m.logits);
  g.mark_output(m.loss);
  g.loss = m.loss;
  return m;
}

MultiTaskGraph build_multitask_graph(const GptConfig& c, const std::vector<HeadSpec>& heads,
                                     const std::vector<float>& weights, const TrunkOptions& o) {
  if (heads.size() < 2) user_error("multi-task: give at least two tasks");
  if (weights.size() != heads.size()) user_error("multi-task: ", weights.size(), " weights for ", heads.size(), " tasks");
  MultiTaskGraph m;
  Graph& g = m.graph;
  m.trunk = add_trunk(g, c, heads, o);
  Attrs sum;
  std::vector<int> losses;
  for (size_t k = 0; k < heads.size(); ++k) {
    if (!(weights[k] > 0)) user_error("multi-task: task ", heads[k].task, " has weight ", weights[k], " (must be > 0)");
    for (size_t j = 0; j < k; ++j)
      if (heads[j].task == heads[k].task) user_error("multi-task: task ", heads[k].task, " given twice");
    const Head h = add_head(g, m.trunk, heads[k], o, "labels." + heads[k].task);
    m.labels.push_back(h.labels);
    m.logits.push_back(h.logits);
    auto ce = g.add("cross_entropy", {h.logits, h.labels}, loss_attrs(c, heads[k], weights[k]),
                    "loss." + heads[k].task);
    m.losses.push_back(ce[1]);
    if (heads[k].kind != HeadKind::LanguageModel) g.mark_output(h.logits);
    g.mark_output(ce[1]);
    sum.values["w" + std::to_string(k)] = weights[k];
  }
  m.loss = g.add("sum_losses", m.losses, sum, "loss")[0];
  g.mark_output(m.loss);
  g.loss = m.loss;
  return m;
}

}  // namespace ferry
