// engine/generate/beam_search.h — beam search over a KV-cache decoder, for translation.
//
// Each source keeps `beam` hypotheses; a step extends every live one by every token, scores them by
// summed log-probability, and keeps the best 2·beam candidates of the source: those that end in
// `eos` are finished, the best `beam` others live on (their caches reordered into the rows).
// Finished hypotheses are ranked by length-normalized score, Σ log p / len^length_penalty (Wu et al.
// 2016 without their constant; len counts generated tokens, eos included), so that short outputs are
// not favoured just for having fewer terms. A source stops once it holds `beam` finished hypotheses
// and none of its live ones can still beat the best of them (log-probabilities only fall, so a
// live hypothesis' normalized score is bounded by its sum over the longest allowed length), or at
// max_new_tokens, when its live hypotheses join the finished ones.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/model/gpt.h"

namespace ferry {

struct BeamOptions {
  int beam = 4;
  int max_new_tokens = 64;
  int32_t eos = -1;
  float length_penalty = 1.0f;  // 0: raw sum of log-probabilities
};

struct BeamHypothesis {
  std::vector<int32_t> tokens;  // generated tokens, eos excluded
  double log_prob = 0;           // Σ log p, eos included when it ended there
  double score = 0;              // normalized
  bool finished = false;         // ended in eos (else it hit the length limit)
};

// The best hypothesis of every prompt (for plain greedy decoding use generate_cached: beam 1 here
// still weighs an early eos against its runner-up). Prompts are decoded together
// (beam rows each); max_len caps prompt + output positions (≤ c.max_seq_len).
std::vector<BeamHypothesis> beam_search(const GptConfig& c, const std::vector<float>& flat,
                                        const std::vector<std::vector<int32_t>>& prompts, const BeamOptions& o,
                                        int max_len);

}  // namespace ferry
