// tools/tasks/runner.h — what `ferry finetune`, `ferry eval` and `ferry predict` share: the task's
// data as examples, the model's metadata (architecture, vocabulary, head), graphs and metrics.
//
// A task is one of
//   sentiment  IMDB (imdb.h), 2 classes, sequence classification
//   ner        WNUT-17 or BTC (conll.h), BIO tags on the first sub-token of each word
//   lm         language modelling on text sources (gutenberg, sotu, imdb = the pretraining pool):
//              next-token for a causal model, masked tokens (MLM) for an encoder
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/backend.h"
#include "engine/finetune/inference.h"
#include "engine/finetune/model_file.h"
#include "engine/model/heads.h"
#include "tools/tasks/batches.h"
#include "tools/tasks/conll.h"
#include "tools/tasks/ner_scorer.h"
#include "tools/tasks/vocab.h"

namespace ferry::tasks {

// The model's description, stored as model.json's meta.
struct ModelMeta {
  GptConfig config;
  TaskVocab vocab;
  std::string task;      // the head this model was last trained with ("lm" for a pretrained trunk)
  HeadSpec head;
  std::string corpus;    // ner: wnut17 | btc
  std::vector<std::string> tag_names;
  int seq_len = 128;
  nlohmann::json to_json() const;
  static ModelMeta from_json(const nlohmann::json& j);
  // A model file's meta: a task model's own, or for a pretraining checkpoint (ferry pretrain) its
  // trunk as a language model over GPT-2's vocabulary.
  static ModelMeta of(const ModelFile& f);
};

HeadSpec head_for_task(const std::string& task, const GptConfig& c, const std::string& pooling,
                       const TagSet& tags);

// A bidirectional trunk under a language-model head learns masked tokens (MLM): its training rows
// are masked afresh each pass, its held-out rows once, in order, from heldout_mask_rng, so every
// evaluation (fine-tuning's held-out loss, `ferry eval --task mlm`) scores the same positions.
bool is_masked_lm(const ModelMeta& meta);
void mask_for_mlm(Example& e, const ModelMeta& meta, std::mt19937_64& rng);
std::mt19937_64 heldout_mask_rng(uint64_t seed);

// Examples of one split of a task, encoded with the model's vocabulary.
struct TaskData {
  std::vector<Example> train, dev, test;
  std::vector<TaggedSentence> dev_sentences, test_sentences;  // ner: the words, for scoring
  TagSet tags;
  size_t n_train_labels = 0;
  std::string description;  // counts, for the log and the README
};

struct DataOptions {
  int seq_len = 128;
  size_t train_labels = 0;  // 0: all
  size_t dev_limit = 0;     // 0: all
  size_t test_limit = 0;    // 0: all
  uint64_t seed = 1337;
  std::string corpus = "wnut17";
  std::vector<std::string> lm_sources = {"gutenberg", "sotu", "imdb"};
  size_t lm_bytes_per_source = 0;  // 0: all
};

// The GPT-2 ids of the LM sources (or of the sentiment training text), for a compact vocabulary.
std::vector<int64_t> gpt2_counts(const std::string& task, const DataOptions& o);

TaskData load_task(const std::string& task, const TaskVocab& vocab, const DataOptions& o);

// Class predictions (argmax) of classification examples, and NER tags per word.
struct ClassifierEval {
  double accuracy = 0;
  long confusion[2][2] = {{0, 0}, {0, 0}};  // [gold][predicted]
  std::vector<int> predicted;
  std::vector<float> positive_probability;
};
ClassifierEval evaluate_classifier(Inference& inf, const GraphInputs& in, const std::vector<Example>& examples,
                                   int B, int T, int32_t pad);

struct TaggerEval {
  NerScorer scorer;
  std::vector<std::vector<std::string>> predicted;  // per sentence, per word
};
// examples[i] aligns with sentences[i]; first_tokens from align_words.
TaggerEval evaluate_tagger(Inference& inf, const GraphInputs& in, const std::vector<Example>& examples,
                           const std::vector<TaggedSentence>& sentences,
                           const std::vector<std::vector<int>>& first_tokens, const TagSet& tags, int B, int T,
                           int32_t pad);

// Mean loss over examples (language model).
double evaluate_loss(StepRunner& step, const GraphInputs& in, HeadKind kind, const std::vector<Example>& examples,
                     int B, int T, int32_t pad, size_t max_batches);

// Word positions of a sentence's first sub-tokens, recomputed (NER scoring needs them).
std::vector<std::vector<int>> first_tokens_of(const std::vector<TaggedSentence>& sentences, const TaskVocab& vocab,
                                              int T);

}  // namespace ferry::tasks
