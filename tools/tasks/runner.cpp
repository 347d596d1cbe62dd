// tools/tasks/runner.cpp
#include "tools/tasks/runner.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "engine/assets.h"
#include "engine/config_fields.h"
#include "base/error.h"
#include "tools/data/corpus_sources.h"
#include "tools/tasks/imdb.h"
#include "tools/translate/task.h"

namespace ferry::tasks {

namespace {

const tokenizer::Gpt2Tokenizer& gpt2() {
  static const tokenizer::Gpt2Tokenizer t = tokenizer::Gpt2Tokenizer::load(tokenizer::Gpt2Tokenizer::default_dir());
  return t;
}

std::vector<Review> limit(const std::vector<Review>& v, size_t n, uint64_t seed) {
  return n == 0 || n >= v.size() ? v : stratified_subset(v, n, seed);
}

Example review_example(const Review& r, const TaskVocab& vocab, int T) {
  Example e;
  e.ids = head_and_tail(vocab.encode(gpt2(), review_prose(r.text)), T);
  if (e.ids.empty()) e.ids.push_back(vocab.separator());
  e.label = r.label;
  return e;
}

Example sentence_example(const TaggedSentence& s, const TaskVocab& vocab, const TagSet& tags, int T) {
  const AlignedSentence a = align_words(gpt2(), vocab, s.words, T);
  Example e;
  e.ids = a.ids;
  e.token_labels.assign(a.ids.size(), kIgnoreLabel);
  for (size_t w = 0; w < s.words.size(); ++w) {
    if (a.first_token[w] < 0) continue;
    const int id = tags.id(s.tags[w]);
    e.token_labels[a.first_token[w]] = id;  // a tag outside the training tag set: no loss (−1)
  }
  if (e.ids.empty()) {
    e.ids.push_back(vocab.separator());
    e.token_labels.push_back(kIgnoreLabel);
  }
  return e;
}

std::vector<data::CorpusDocument> lm_documents(const DataOptions& o) {
  std::vector<data::CorpusDocument> docs;
  for (const auto& name : o.lm_sources) {
    auto src = data::read_source(data::corpus_source(name), assets_dir());
    size_t bytes = 0;
    for (auto& d : src) {
      if (o.lm_bytes_per_source && bytes >= o.lm_bytes_per_source) break;
      bytes += d.text.size();
      docs.push_back(std::move(d));
    }
  }
  return docs;
}

}  // namespace

nlohmann::json ModelMeta::to_json() const {
  return {{"model", fields_to_json(config)}, {"vocab", vocab.to_json()},  {"task", task},
          {"head_kind", static_cast<int>(head.kind)}, {"n_classes", head.n_classes},
          {"pooling", pooling_name(head.pooling)}, {"corpus", corpus}, {"tags", tag_names}, {"seq_len", seq_len}};
}

ModelMeta ModelMeta::from_json(const nlohmann::json& j) {
  ModelMeta m;
  try {
    fields_from_json(j.at("model"), m.config, "model.json meta", "model config");
    m.vocab = TaskVocab::from_json(j.at("vocab"));
    m.task = j.at("task").get<std::string>();
    m.head.task = m.task;
    m.head.kind = static_cast<HeadKind>(j.at("head_kind").get<int>());
    m.head.n_classes = j.at("n_classes").get<int>();
    m.head.pooling = parse_pooling(j.at("pooling").get<std::string>());
    m.corpus = j.value("corpus", "");
    m.tag_names = j.value("tags", std::vector<std::string>{});
    m.seq_len = j.value("seq_len", 128);
  } catch (const UserError&) {
    throw;
  } catch (const std::exception& e) {
    user_error("model.json meta: ", e.what());
  }
  validate_gpt(m.config);
  return m;
}

ModelMeta ModelMeta::of(const ModelFile& f) {
  if (!f.pretraining()) return from_json(f.meta);
  if (f.config.vocab_size < tokenizer::Gpt2Tokenizer::kVocabSize)
    user_error("model ", f.path.string(), ": a model without a task vocabulary (a pretraining checkpoint or imported "
               "weights) with vocab_size ", f.config.vocab_size, " (such models are read with GPT-2's ",
               tokenizer::Gpt2Tokenizer::kVocabSize, " ids)");
  ModelMeta m;
  m.config = f.config;
  m.vocab = TaskVocab::gpt2();
  m.task = "lm";
  m.head = head_for_task("lm", m.config, "", {});
  m.seq_len = std::min(m.config.max_seq_len, 128);
  return m;
}

bool is_masked_lm(const ModelMeta& meta) { return meta.head.kind == HeadKind::LanguageModel && !meta.config.causal; }

void mask_for_mlm(Example& e, const ModelMeta& meta, std::mt19937_64& rng) {
  mask_tokens(e, meta.vocab.mask(), meta.vocab.first_piece(), meta.config.vocab_size, rng);
}

std::mt19937_64 heldout_mask_rng(uint64_t seed) { return std::mt19937_64(seed + 99); }

HeadSpec head_for_task(const std::string& task, const GptConfig& c, const std::string& pooling, const TagSet& tags) {
  HeadSpec h;
  h.task = task;
  if (task == "sentiment") {
    h.kind = HeadKind::SequenceClassification;
    h.n_classes = 2;
    h.pooling = pooling.empty() ? default_pooling(c) : parse_pooling(pooling);
  } else if (task == "ner") {
    h.kind = HeadKind::TokenClassification;
    h.n_classes = static_cast<int>(tags.names.size());
  } else if (task == "lm" || task == "translate") {  // translate: conditional LM (tools/translate/task.h)
    h.kind = HeadKind::LanguageModel;
    h.n_classes = c.vocab_size;
  } else {
    user_error("--task: unknown task '", task, "' (sentiment, ner, lm, translate)");
  }
  return h;
}

std::vector<int64_t> gpt2_counts(const std::string& task, const DataOptions& o) {
  if (task == "translate") return translate::translate_gpt2_counts(o);
  std::vector<int64_t> counts(tokenizer::Gpt2Tokenizer::kVocabSize, 0);
  auto add = [&](const std::string& text) {
    for (int32_t id : gpt2().encode(text)) ++counts[id];
  };
  if (task == "lm") {
    for (const auto& d : lm_documents(o)) add(d.text);
  } else if (task == "sentiment") {
    const auto split = split_imdb(read_imdb_reviews(default_imdb_path()), o.seed);
    for (const auto& r : split.train) add(review_prose(r.text));
  } else if (task == "ner") {
    for (const auto& s : read_conll(ner_file(o.corpus, "train"))) {
      std::string text;
      for (const auto& w : s.words) text += (text.empty() ? "" : " ") + w;
      add(text);
    }
  }
  return counts;
}

TaskData load_task(const std::string& task, const TaskVocab& vocab, const DataOptions& o) {
  if (task == "translate") return translate::load_translate_task(vocab, o);
  TaskData d;
  const int T = o.seq_len;
  if (task == "sentiment") {
    const auto split = split_imdb(read_imdb_reviews(default_imdb_path()), o.seed);
    const auto train = stratified_subset(split.train, o.train_labels, o.seed);
    const auto dev = limit(split.dev, o.dev_limit, o.seed + 1);
    const auto test = limit(split.test, o.test_limit, o.seed + 2);
    for (const auto& r : train) d.train.push_back(review_example(r, vocab, T));
    for (const auto& r : dev) d.dev.push_back(review_example(r, vocab, T));
    for (const auto& r : test) d.test.push_back(review_example(r, vocab, T));
    d.n_train_labels = d.train.size();
    d.description = str_cat("IMDB (seed ", o.seed, "): ", split.read, " reviews, ", split.duplicates_dropped,
                            " duplicate copies and ", split.conflicting_dropped,
                            " texts with conflicting labels dropped; split train ", split.train.size(), " / dev ",
                            split.dev.size(), " / test ", split.test.size(), "; using train ", d.train.size(),
                            ", dev ", d.dev.size(), ", test ", d.test.size());
  } else if (task == "ner") {
    auto train = read_conll(ner_file(o.corpus, "train"));
    d.dev_sentences = read_conll(ner_file(o.corpus, "dev"));
    d.test_sentences = read_conll(ner_file(o.corpus, "test"));
    d.tags = tag_set_of(train);
    if (o.train_labels && o.train_labels < train.size()) train.resize(o.train_labels);
    if (o.dev_limit && o.dev_limit < d.dev_sentences.size()) d.dev_sentences.resize(o.dev_limit);
    if (o.test_limit && o.test_limit < d.test_sentences.size()) d.test_sentences.resize(o.test_limit);
    for (const auto& s : train) d.train.push_back(sentence_example(s, vocab, d.tags, T));
    for (const auto& s : d.dev_sentences) d.dev.push_back(sentence_example(s, vocab, d.tags, T));
    for (const auto& s : d.test_sentences) d.test.push_back(sentence_example(s, vocab, d.tags, T));
    d.n_train_labels = train.size();
    d.description = str_cat(o.corpus, ": train ", train.size(), " / dev ", d.dev.size(), " / test ", d.test.size(),
                            " sentences, ", d.tags.names.size(), " tags");
  } else if (task == "lm") {
    // Documents, each opened by the separator (llm.c's convention), in one stream; the last 2% of
    // windows are the held-out ones.
    std::vector<int32_t> stream;
    for (const auto& doc : lm_documents(o)) {
      stream.push_back(vocab.separator());
      auto ids = vocab.encode(gpt2(), doc.text);
      stream.insert(stream.end(), ids.begin(), ids.end());
    }
    auto windows = lm_windows(stream, T);
    std::mt19937_64 rng(o.seed);
    for (size_t i = windows.size(); i > 1; --i) std::swap(windows[i - 1], windows[rng() % i]);
    const size_t n_dev = std::max<size_t>(1, windows.size() / 50);
    if (windows.size() < 2) user_error("lm: the text sources hold too few tokens for seq_len ", T);
    d.dev.assign(windows.end() - static_cast<std::ptrdiff_t>(n_dev), windows.end());
    windows.resize(windows.size() - n_dev);
    d.train = std::move(windows);
    d.description = str_cat("lm: ", stream.size(), " tokens, ", d.train.size(), " train and ", d.dev.size(),
                            " held-out windows of ", T);
  } else {
    user_error("--task: unknown task '", task, "' (sentiment, ner, lm)");
  }
  return d;
}

ClassifierEval evaluate_classifier(Inference& inf, const GraphInputs& in, const std::vector<Example>& examples, int B,
                                   int T, int32_t pad) {
  ClassifierEval r;
  long correct = 0;
  for (size_t s = 0; s < examples.size(); s += static_cast<size_t>(B)) {
    std::vector<const Example*> rows;
    for (size_t k = s; k < std::min(examples.size(), s + B); ++k) rows.push_back(&examples[k]);
    const auto logits = inf.logits(make_batch(in, HeadKind::SequenceClassification, rows, B, T, pad));
    for (size_t k = 0; k < rows.size(); ++k) {
      const float l0 = logits[k * 2], l1 = logits[k * 2 + 1];
      const int p = l1 > l0 ? 1 : 0;
      r.predicted.push_back(p);
      r.positive_probability.push_back(static_cast<float>(1.0 / (1.0 + std::exp(double(l0) - l1))));
      const int g = rows[k]->label;
      if (g == 0 || g == 1) {
        ++r.confusion[g][p];
        correct += g == p;
      }
    }
  }
  r.accuracy = examples.empty() ? 0.0 : double(correct) / double(examples.size());
  return r;
}

TaggerEval evaluate_tagger(Inference& inf, const GraphInputs& in, const std::vector<Example>& examples,
                           const std::vector<TaggedSentence>& sentences,
                           const std::vector<std::vector<int>>& first_tokens, const TagSet& tags, int B, int T,
                           int32_t pad) {
  TaggerEval r;
  const size_t K = tags.names.size();
  for (size_t s = 0; s < examples.size(); s += static_cast<size_t>(B)) {
    std::vector<const Example*> rows;
    for (size_t k = s; k < std::min(examples.size(), s + B); ++k) rows.push_back(&examples[k]);
    const auto logits = inf.logits(make_batch(in, HeadKind::TokenClassification, rows, B, T, pad));
    for (size_t k = 0; k < rows.size(); ++k) {
      const auto& sent = sentences[s + k];
      std::vector<std::string> pred(sent.words.size(), "O");
      for (size_t w = 0; w < sent.words.size(); ++w) {
        const int t = first_tokens[s + k][w];
        if (t < 0) continue;
        const float* l = logits.data() + (k * T + t) * K;
        pred[w] = tags.names[std::max_element(l, l + K) - l];
      }
      if (!sent.tags.empty()) r.scorer.add(sent.tags, pred);
      r.predicted.push_back(std::move(pred));
    }
  }
  return r;
}

double evaluate_loss(StepRunner& step, const GraphInputs& in, HeadKind kind, const std::vector<Example>& examples,
                     int B, int T, int32_t pad, size_t max_batches) {
  double sum = 0;
  size_t n = 0;
  // A last, partial batch counts too (its padding rows carry no labels), so that a held-out set
  // smaller than one batch is still measured rather than reported as 0.
  for (size_t s = 0; s < examples.size() && n < max_batches; s += static_cast<size_t>(B), ++n) {
    std::vector<const Example*> rows;
    for (size_t k = s; k < std::min(examples.size(), s + B); ++k) rows.push_back(&examples[k]);
    sum += step.evaluate(shard_rows(make_batch(in, kind, rows, B, T, pad), step.data_shard()));  // B: the global batch
  }
  return n ? sum / double(n) : 0.0;
}

std::vector<std::vector<int>> first_tokens_of(const std::vector<TaggedSentence>& sentences, const TaskVocab& vocab,
                                              int T) {
  std::vector<std::vector<int>> out;
  for (const auto& s : sentences) out.push_back(align_words(gpt2(), vocab, s.words, T).first_token);
  return out;
}

}  // namespace ferry::tasks
