// tools/translate/task.h — translation as a fine-tuning task (`--task translate`, English → Spanish):
// conditional language modelling on "source <sep> target <eos>" with the loss on the target side
// only, decoding with the KV cache (greedy or beam search), and corpus BLEU on a held-out split.
//
// Sequence: the English ids, the separator, the Spanish ids, then eos; separator and eos are both
// the vocabulary's document separator (<|endoftext|>), which a causal model reads by position: the
// first one ends the source, the second ends the translation. A sequence longer than the model's
// positions keeps at most half of them for the source and cuts the target.
// Labels: position i predicts token i+1 when that token lies after the separator (target tokens and
// eos), −1 elsewhere (no loss on the prompt).
// Data: <dir>/{train,dev,test}.jsonl from `ferry data prepare --task translate`, where
// dir = $FERRY_TRANSLATE_DATA or data/translate.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tools/tasks/evaluation.h"
#include "tools/translate/bleu.h"
#include "tools/translate/prepare.h"

namespace ferry::translate {

// Conditional-LM example (ids and token labels) of one pair, at most T positions.
tasks::Example pair_example(const std::vector<int32_t>& source, const std::vector<int32_t>& target, int32_t sep,
                            int32_t eos, int T);
// The decoding prompt of a source: its ids (at most T/2) and the separator.
std::vector<int32_t> source_prompt(const std::vector<int32_t>& source, int32_t sep, int T);

// GPT-2 id counts of the training pairs (both languages), for a compact vocabulary.
std::vector<int64_t> translate_gpt2_counts(const tasks::DataOptions& o);
// train (o.train_labels pairs, seeded subset; 0: all), dev and test (the first dev_limit / test_limit
// pairs in canonical order; 0: all).
tasks::TaskData load_translate_task(const tasks::TaskVocab& vocab, const tasks::DataOptions& o);

// Model ids → text (separator, <unk> and <mask> dropped).
class TextDecoder {
 public:
  explicit TextDecoder(const tasks::TaskVocab& vocab);
  std::string decode(const std::vector<int32_t>& model_ids) const;

 private:
  std::vector<int32_t> to_gpt2_;  // −1: not text
};

struct DecodeOptions {
  int beam = 4;             // 1: greedy (no beam bookkeeping)
  int max_new_tokens = 0;   // 0: up to the model's sequence length
  float length_penalty = 1.0f;
  int batch = 16;           // sources decoded together
};

// Translations of English sentences with a translation model (meta from its folder, params in the
// task graph's flat order, adapters merged).
std::vector<std::string> translate_texts(const tasks::ModelMeta& meta, const std::vector<float>& params,
                                         const std::vector<std::string>& english, const DecodeOptions& o);

// BLEU of the first `count` pairs of a split ("dev" or "test"): eval.json's fields
// (metric "bleu", sacreBLEU's signature, precisions, BP, lengths) and ref/source/reference/hypothesis
// lines as predictions.
tasks::EvalReport evaluate_translation(const tasks::TaskModel& m, const std::vector<float>& params, size_t count,
                                       const std::string& split, const DecodeOptions& o = {});

}  // namespace ferry::translate
