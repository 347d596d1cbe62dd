// engine/model/heads.h — task heads on the shared trunk (encoder.h): one graph per task, whose
// parameters are the trunk's (same names in every task) plus head.<task>.*.
//
//   language model            logits [B,T,Vp] = hidden · wteᵀ (tied; Vp the padded vocabulary,
//                             gpt.h: columns from V on never enter the loss), targets [B,T]; next-token
//                             prediction for a causal trunk, masked tokens for an encoder (MLM)
//   sequence classification   pool_tokens(hidden, lengths) [B,C] · Wᵀ + b → [B,K], labels [B]
//   token classification      hidden · Wᵀ + b → [B,T,K], labels [B,T] (−1 on non-first sub-tokens
//                             and padding: no loss there)
// The loss is cross_entropy with ignore_index −1 (mean over labelled positions); logits stay
// readable after a forward pass.
#pragma once
#include <string>

#include "engine/model/encoder.h"

namespace ferry {

enum class HeadKind { LanguageModel, SequenceClassification, TokenClassification };
// pool_tokens modes.
enum class Pooling { First = 0, Last = 1, Mean = 2 };

inline constexpr int kIgnoreLabel = -1;

struct HeadSpec {
  std::string task;  // names the head's parameters: head.<task>.weight / .bias
  HeadKind kind = HeadKind::SequenceClassification;
  int n_classes = 2;                // classification heads
  Pooling pooling = Pooling::Last;  // sequence classification
};

// Last real token for a causal trunk (the only position that saw the whole text), mean over the
// real tokens for a bidirectional one.
Pooling default_pooling(const GptConfig& c);
Pooling parse_pooling(const std::string& name);  // first | last | mean; UserError otherwise
const char* pooling_name(Pooling p);

struct TaskGraph {
  Graph graph;
  Trunk trunk;
  int labels = -1;  // input i32: [B] or [B,T]
  int logits = -1;  // output [B,K], [B,T,K] or [B,T,Vp]
  int loss = -1;    // output [1]
};

// loss_scale: cross_entropy's scale (1/grad_accum).
TaskGraph build_task_graph(const GptConfig& c, const HeadSpec& head, const TrunkOptions& o, float loss_scale = 1.0f);

// Several heads on one trunk (multi-task): head k reads input "labels.<task>" and its cross_entropy
// is scaled by weights[k]; the step's loss is sum_losses = Σ weights[k]·loss_k, so one backward
// pass trains every head and the shared trunk. A row labelled for one task holds −1 in the other
// tasks' labels, so each head learns only from its own rows (a head with no rows in a batch adds
// nothing). Parameter names are those of each task's own graph: a task's model is the trunk plus
// its head.<task>.* taken by name.
struct MultiTaskGraph {
  Graph graph;
  Trunk trunk;
  std::vector<int> labels, logits, losses;  // per head, in the order given
  int loss = -1;
};
MultiTaskGraph build_multitask_graph(const GptConfig& c, const std::vector<HeadSpec>& heads,
                                     const std::vector<float>& weights, const TrunkOptions& o);

}  // namespace ferry
