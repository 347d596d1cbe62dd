// tests/finetune/finetune_graphs.h — the fine-tuning graphs a device must run, built as ferry
// finetune builds them (fp32, techniques applied, forward only): sentiment with each pooling on a
// causal or bidirectional trunk, with LoRA or a frozen trunk; NER tagging; the causal and masked
// language models; multi-task. Shared by the CUDA coverage test (cpu label) and the CPU-vs-CUDA
// training test (gpu label).
#pragma once
#include <random>
#include <string>
#include <vector>

#include "engine/finetune/techniques.h"
#include "engine/model/heads.h"
#include "engine/train/step.h"

namespace ferry::test {

struct FinetuneCase {
  std::string name;
  bool causal = true;
  std::vector<HeadSpec> heads;  // two or more: multi-task
  Techniques techniques;
};

inline GptConfig finetune_config(bool causal, int n_embd = 64, int n_head = 4) {
  GptConfig c;
  c.preset = "finetune-test";
  c.n_layer = 2;
  c.n_head = n_head;
  c.n_embd = n_embd;
  c.vocab_size = 96;
  c.max_seq_len = 32;
  c.causal = causal;
  return c;
}

// A small sentiment graph with the lower block frozen and layer-wise learning rates: frozen,
// decayed and undecayed runs of parameters and alignment gaps between them (the optimizer
// tables' tests).
inline Graph frozen_sentiment_graph() {
  GptConfig c;
  c.preset = "frozen-sentiment-test";
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 24;
  c.vocab_size = 50;
  c.max_seq_len = 8;
  HeadSpec h;
  h.task = "sentiment";
  h.n_classes = 3;
  TrunkOptions o;
  o.batch = 2;
  o.seq_len = 8;
  TaskGraph g = build_task_graph(c, h, o);
  Techniques t;
  t.freeze = "lower:1";
  t.layer_lr_decay = 0.5f;
  apply_techniques(g.graph, c, t);
  return std::move(g.graph);
}

inline std::vector<FinetuneCase> finetune_cases() {
  auto seq = [](Pooling p) {
    HeadSpec h;
    h.task = "sentiment";
    h.kind = HeadKind::SequenceClassification;
    h.n_classes = 2;
    h.pooling = p;
    return h;
  };
  HeadSpec ner;
  ner.task = "ner";
  ner.kind = HeadKind::TokenClassification;
  ner.n_classes = 9;
  HeadSpec lm;
  lm.task = "lm";
  lm.kind = HeadKind::LanguageModel;
  std::vector<FinetuneCase> cs;
  cs.push_back({"sentiment_last_causal", true, {seq(Pooling::Last)}, {}});
  cs.push_back({"sentiment_mean_encoder", false, {seq(Pooling::Mean)}, {}});
  cs.push_back({"sentiment_first_encoder", false, {seq(Pooling::First)}, {}});
  FinetuneCase lora{"sentiment_lora", true, {seq(Pooling::Last)}, {}};
  lora.techniques.lora.rank = 4;
  cs.push_back(lora);
  FinetuneCase frozen{"sentiment_frozen_lower", true, {seq(Pooling::Mean)}, {}};
  frozen.techniques.freeze = "lower:1";
  frozen.techniques.layer_lr_decay = 0.8f;
  cs.push_back(frozen);
  cs.push_back({"ner_encoder", false, {ner}, {}});
  cs.push_back({"lm_causal", true, {lm}, {}});
  cs.push_back({"lm_masked_encoder", false, {lm}, {}});
  cs.push_back({"multitask_sentiment_ner", false, {seq(Pooling::Mean), ner}, {}});
  return cs;
}

// The graph of a case with its inputs: tokens, lengths, one labels input per head.
struct BuiltCase {
  Graph graph;
  int tokens = -1, lengths = -1;
  std::vector<int> labels, logits;
};

inline BuiltCase build_case(const FinetuneCase& fc, const GptConfig& c, int B, int T) {
  TrunkOptions o;
  o.batch = B;
  o.seq_len = T;
  o.lora = fc.techniques.lora;
  BuiltCase b;
  if (fc.heads.size() == 1) {
    TaskGraph g = build_task_graph(c, fc.heads[0], o);
    b.tokens = g.trunk.tokens;
    b.lengths = g.trunk.lengths;
    b.labels = {g.labels};
    b.logits = {g.logits};
    b.graph = std::move(g.graph);
  } else {
    MultiTaskGraph g = build_multitask_graph(c, fc.heads, std::vector<float>(fc.heads.size(), 1.0f), o);
    b.tokens = g.trunk.tokens;
    b.lengths = g.trunk.lengths;
    b.labels = g.labels;
    b.logits = g.logits;
    b.graph = std::move(g.graph);
  }
  apply_techniques(b.graph, c, fc.techniques);
  return b;
}

// Ragged rows (row 0 full, row 1 a single token), padding unlabelled; multi-task rows alternate
// between the heads (−1 in the other head's labels).
inline Batch random_case_batch(const FinetuneCase& fc, const BuiltCase& b, int B, int T, int vocab,
                               std::mt19937_64& rng) {
  std::uniform_int_distribution<int32_t> tok(0, vocab - 1), len(1, T);
  std::vector<int32_t> tokens(size_t(B) * T, 0), lengths(B);
  for (int r = 0; r < B; ++r) {
    lengths[r] = r == 0 ? T : r == 1 ? 1 : len(rng);
    for (int t = 0; t < lengths[r]; ++t) tokens[size_t(r) * T + t] = tok(rng);
  }
  Batch batch;
  batch.inputs.emplace_back(b.tokens, tokens);
  if (b.lengths >= 0) batch.inputs.emplace_back(b.lengths, lengths);
  for (size_t h = 0; h < fc.heads.size(); ++h) {
    const HeadSpec& head = fc.heads[h];
    auto own = [&](int r) { return fc.heads.size() == 1 || r % int(fc.heads.size()) == int(h); };
    std::uniform_int_distribution<int32_t> cls(0, (head.kind == HeadKind::LanguageModel ? vocab : head.n_classes) - 1);
    std::vector<int32_t> labels;
    if (head.kind == HeadKind::SequenceClassification) {
      for (int r = 0; r < B; ++r) labels.push_back(own(r) ? cls(rng) : kIgnoreLabel);
    } else {
      labels.assign(size_t(B) * T, kIgnoreLabel);
      for (int r = 0; r < B; ++r)
        for (int t = 0; t < lengths[r]; ++t)
          if (own(r) && (t % 3 != 2 || head.kind == HeadKind::LanguageModel)) labels[size_t(r) * T + t] = cls(rng);
    }
    batch.inputs.emplace_back(b.labels[h], labels);
  }
  return batch;
}

}  // namespace ferry::test
