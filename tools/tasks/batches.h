// tools/tasks/batches.h — task examples as fixed-shape batches for a task graph.
//
// Every row is padded at its end to T with the vocabulary's pad id; `lengths` holds the real length
// (the attention op masks keys beyond it, pooling reads only real tokens). Rows that fill out a last,
// partial batch carry label −1, so they add nothing to the loss or to a metric.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

#include "engine/model/heads.h"
#include "engine/train/step.h"

namespace ferry::tasks {

struct Example {
  std::vector<int32_t> ids;
  int label = kIgnoreLabel;          // sequence classification
  std::vector<int32_t> token_labels;  // token classification / language model: one per id (−1: none)
};

// Input value ids of a task graph.
struct GraphInputs {
  int tokens = -1, lengths = -1, labels = -1;
  static GraphInputs of(const TaskGraph& g) { return {g.trunk.tokens, g.trunk.lengths, g.labels}; }
};

// rows.size() <= B; missing rows are padding rows.
Batch make_batch(const GraphInputs& in, HeadKind kind, const std::vector<const Example*>& rows, int B, int T,
                 int32_t pad);

// Multi-task batches (heads.h build_multitask_graph): row r is an example of task rows[r].first;
// its labels go to that head's input, −1 (no loss) to every other head's.
struct MultiTaskInputs {
  int tokens = -1, lengths = -1;
  std::vector<int> labels;      // per head
  std::vector<HeadKind> kinds;  // per head
};
Batch make_multitask_batch(const MultiTaskInputs& in, const std::vector<std::pair<int, const Example*>>& rows, int B,
                           int T, int32_t pad);

// Language-model examples from a token stream: windows of T+1 tokens, stride T.
//   causal:  ids = w[0..T), token_labels = w[1..T]
//   masked:  (encoder MLM) 15% of positions chosen; label = the original token there, −1 elsewhere;
//            a chosen input becomes `mask` (80%), a random id in [first_random, vocab) (10%), or stays.
std::vector<Example> lm_windows(const std::vector<int32_t>& stream, int T);
void mask_tokens(Example& e, int32_t mask, int32_t first_random, int32_t vocab, std::mt19937_64& rng);

}  // namespace ferry::tasks
