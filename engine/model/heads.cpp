// engine/model/heads.cpp
#include "engine/model/heads.h"

#include "engine/error.h"

namespace ferry {

Pooling default_pooling(const GptConfig& c) { return c.causal ? Pooling::Last : Pooling::Mean; }

Pooling parse_pooling(const std::string& name) {
  if (name == "first") return Pooling::First;
  if (name == "last") return Pooling::Last;
  if (name == "mean") return Pooling::Mean;
  user_error("--pooling: unknown pooling '", name, "' (first, last or mean)");
}

const char* pooling_name(Pooling p) {
  switch (p) {
    case Pooling::First: return "first";
    case Pooling::Last: return "last";
    default: return "mean";
  }
}

TaskGraph build_task_graph(const GptConfig& c, const HeadSpec& head, const TrunkOptions& o, float loss_scale) {
  TaskGraph m;
  Graph& g = m.graph;
  m.trunk = build_trunk(g, c, o);
  const int64_t B = o.batch, T = o.seq_len, C = c.n_embd;
  const std::string p = "head." + head.task + ".";
  switch (head.kind) {
    case HeadKind::LanguageModel:
      m.labels = g.add_input("targets", {B, T}, DType::I32);
      m.logits = g.add("matmul", {m.trunk.hidden, m.trunk.wte}, {}, "lm_head")[0];
      break;
    case HeadKind::SequenceClassification: {
      if (head.n_classes < 2) user_error("task ", head.task, ": a classifier needs at least 2 classes");
      if (m.trunk.lengths < 0) user_error("sequence classification needs the lengths input (key_lengths)");
      m.labels = g.add_input("labels", {B}, DType::I32);
      const int pooled = g.add("pool_tokens", {m.trunk.hidden, m.trunk.lengths},
                               {{"mode", static_cast<double>(head.pooling)}}, "pool")[0];
      const int w = g.add_param(p + "weight", {head.n_classes, C}, o.dtype, true, -1);
      const int b = g.add_param(p + "bias", {head.n_classes}, o.dtype, false, -1);
      m.logits = g.add("matmul", {pooled, w, b}, {}, "classifier")[0];
      break;
    }
    case HeadKind::TokenClassification: {
      if (head.n_classes < 2) user_error("task ", head.task, ": a tagger needs at least 2 tags");
      m.labels = g.add_input("labels", {B, T}, DType::I32);
      const int w = g.add_param(p + "weight", {head.n_classes, C}, o.dtype, true, -1);
      const int b = g.add_param(p + "bias", {head.n_classes}, o.dtype, false, -1);
      m.logits = g.add("matmul", {m.trunk.hidden, w, b}, {}, "tagger")[0];
      break;
    }
  }
  auto ce = g.add("cross_entropy", {m.logits, m.labels}, {{"scale", loss_scale}, {"ignore_index", kIgnoreLabel}},
                  "loss");
  m.loss = ce[1];
  // Classifier logits are read after the step; a language model's [B,T,V] logits stay in place
  // under cross_entropy's gradient instead (the memory that dominates such a step).
  if (head.kind != HeadKind::LanguageModel) g.mark_output(m.logits);
  g.mark_output(m.loss);
  g.loss = m.loss;
  return m;
}

}  // namespace ferry
