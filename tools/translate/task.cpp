// tools/translate/task.cpp
#include "tools/translate/task.h"

#include <algorithm>
#include <cstdio>
#include <random>
#include <set>

#include "base/error.h"
#include "engine/generate/beam_search.h"
#include "engine/generate/kv_cache.h"
#include "engine/model/gpt.h"

namespace ferry::translate {

namespace {

const tokenizer::Gpt2Tokenizer& gpt2() {
  static const tokenizer::Gpt2Tokenizer t = tokenizer::Gpt2Tokenizer::load(tokenizer::Gpt2Tokenizer::default_dir());
  return t;
}

std::vector<PairRecord> split_pairs(const std::string& split) {
  return read_pairs(default_translate_dir() / (split + ".jsonl"));
}

tasks::Example encode_pair(const PairRecord& p, const tasks::TaskVocab& vocab, int T) {
  const int32_t sep = vocab.separator();
  return pair_example(vocab.encode(gpt2(), p.en), vocab.encode(gpt2(), p.es), sep, sep, T);
}

// The task graph's parameters (exportable: no adapters) in build_gpt's flat order, by name.
std::vector<float> gpt_order(const tasks::ModelMeta& meta, const std::vector<float>& params) {
  TrunkOptions to;
  to.seq_len = 1;
  const TaskGraph tg = build_task_graph(meta.config, meta.head, to);
  if (params.size() != static_cast<size_t>(tg.graph.param_count()))
    user_error("translate: ", params.size(), " parameter values for a model of ", tg.graph.param_count());
  GptBuildOptions go;
  go.with_loss = false;
  const GptGraph g = build_gpt(meta.config, go);
  std::vector<float> flat(static_cast<size_t>(g.graph.param_count()));
  for (const ParamInfo& p : g.graph.params) {
    const int i = tg.graph.param_index(p.name);
    if (i < 0) user_error("translate: the model lacks parameter ", p.name);
    const ParamInfo& src = tg.graph.params[i];
    std::copy_n(params.begin() + static_cast<std::ptrdiff_t>(src.offset), p.numel,
                flat.begin() + static_cast<std::ptrdiff_t>(p.offset));
  }
  return flat;
}

}  // namespace

tasks::Example pair_example(const std::vector<int32_t>& source, const std::vector<int32_t>& target, int32_t sep,
                            int32_t eos, int T) {
  std::vector<int32_t> seq = source_prompt(source, sep, T);
  const size_t prompt = seq.size();
  seq.insert(seq.end(), target.begin(), target.end());
  seq.push_back(eos);
  // ids = seq[0, n), labels = seq[1, n], n ≤ T (the language-model window of lm_windows).
  const size_t n = std::min<size_t>(static_cast<size_t>(T), seq.size() - 1);
  tasks::Example e;
  e.ids.assign(seq.begin(), seq.begin() + static_cast<std::ptrdiff_t>(n));
  e.token_labels.assign(n, kIgnoreLabel);
  for (size_t i = prompt - 1; i < n; ++i) e.token_labels[i] = seq[i + 1];
  return e;
}

std::vector<int32_t> source_prompt(const std::vector<int32_t>& source, int32_t sep, int T) {
  const size_t keep = std::min<size_t>(source.size(), static_cast<size_t>(std::max(1, T / 2)));
  std::vector<int32_t> p(source.begin(), source.begin() + static_cast<std::ptrdiff_t>(keep));
  p.push_back(sep);
  return p;
}

std::vector<int64_t> translate_gpt2_counts(const tasks::DataOptions& o) {
  (void)o;
  std::vector<int64_t> counts(tokenizer::Gpt2Tokenizer::kVocabSize, 0);
  for (const auto& p : split_pairs("train")) {
    for (int32_t id : gpt2().encode(p.en)) ++counts[id];
    for (int32_t id : gpt2().encode(p.es)) ++counts[id];
  }
  return counts;
}

tasks::TaskData load_translate_task(const tasks::TaskVocab& vocab, const tasks::DataOptions& o) {
  tasks::TaskData d;
  const int T = o.seq_len;
  auto train = split_pairs("train");
  auto dev = split_pairs("dev");
  auto test = split_pairs("test");
  const size_t all_train = train.size();
  if (o.train_labels && o.train_labels < train.size()) {
    std::mt19937_64 rng(o.seed);
    for (size_t i = train.size(); i > 1; --i) std::swap(train[i - 1], train[rng() % i]);
    train.resize(o.train_labels);
  }
  if (o.dev_limit && o.dev_limit < dev.size()) dev.resize(o.dev_limit);
  if (o.test_limit && o.test_limit < test.size()) test.resize(o.test_limit);
  for (const auto& p : train) d.train.push_back(encode_pair(p, vocab, T));
  for (const auto& p : dev) d.dev.push_back(encode_pair(p, vocab, T));
  for (const auto& p : test) d.test.push_back(encode_pair(p, vocab, T));
  d.n_train_labels = d.train.size();
  size_t cut = 0;
  for (const auto& e : d.train) cut += e.token_labels.empty() || e.token_labels.back() != vocab.separator();
  d.description = str_cat("translate en→es (", default_translate_dir().string(), "): train ", d.train.size(), " of ",
                          all_train, " pairs (", cut, " cut at ", T, " tokens), dev ", d.dev.size(), ", test ",
                          d.test.size());
  return d;
}

TextDecoder::TextDecoder(const tasks::TaskVocab& vocab) {
  to_gpt2_.resize(static_cast<size_t>(vocab.size()));
  for (int32_t i = 0; i < vocab.size(); ++i) to_gpt2_[static_cast<size_t>(i)] = vocab.to_gpt2(i);
}

std::string TextDecoder::decode(const std::vector<int32_t>& model_ids) const {
  std::vector<int32_t> ids;
  for (int32_t id : model_ids)
    if (id >= 0 && static_cast<size_t>(id) < to_gpt2_.size() && to_gpt2_[id] >= 0) ids.push_back(to_gpt2_[id]);
  std::string text = gpt2().decode(ids);
  const size_t a = text.find_first_not_of(" \t\n"), b = text.find_last_not_of(" \t\n");
  return a == std::string::npos ? std::string() : text.substr(a, b - a + 1);
}

std::vector<std::string> translate_texts(const tasks::ModelMeta& meta, const std::vector<float>& params,
                                         const std::vector<std::string>& english, const DecodeOptions& o) {
  if (!meta.config.causal) user_error("translate: the model is an encoder; translation needs a causal GPT");
  if (o.beam < 1) user_error("--beam must be at least 1, got ", o.beam);
  const std::vector<float> flat = gpt_order(meta, params);
  const int T = std::min(meta.seq_len, meta.config.max_seq_len);
  const int32_t sep = meta.vocab.separator();
  const TextDecoder text(meta.vocab);
  std::vector<std::string> out;
  const size_t batch = static_cast<size_t>(std::max(1, o.batch));
  for (size_t s = 0; s < english.size(); s += batch) {
    std::vector<std::vector<int32_t>> prompts;
    int longest = 0;
    for (size_t i = s; i < std::min(english.size(), s + batch); ++i) {
      prompts.push_back(source_prompt(meta.vocab.encode(gpt2(), english[i]), sep, T));
      longest = std::max<int>(longest, static_cast<int>(prompts.back().size()));
    }
    // Positions left after the longest prompt (each row also stops at its own end of the cache).
    const int room = T - longest + 1;
    const int max_new = o.max_new_tokens > 0 ? o.max_new_tokens : std::max(1, room);
    if (o.beam == 1) {
      SamplingOptions so;
      so.temperature = 0;
      so.max_new_tokens = max_new;
      so.stop_token = sep;
      Rng rng(0);
      for (auto ids : generate_cached(meta.config, flat, prompts, so, rng, T)) {
        if (!ids.empty() && ids.back() == sep) ids.pop_back();
        out.push_back(text.decode(ids));
      }
    } else {
      BeamOptions bo;
      bo.beam = o.beam;
      bo.max_new_tokens = max_new;
      bo.eos = sep;
      bo.length_penalty = o.length_penalty;
      for (const auto& h : beam_search(meta.config, flat, prompts, bo, T)) out.push_back(text.decode(h.tokens));
    }
  }
  return out;
}

tasks::EvalReport evaluate_translation(const tasks::TaskModel& m, const std::vector<float>& params, size_t count,
                                       const std::string& split, const DecodeOptions& o) {
  if (split != "dev" && split != "test") user_error("--split: '", split, "' (dev or test)");
  auto pairs = split_pairs(split);
  if (count < pairs.size()) pairs.resize(count);
  std::vector<std::string> english, spanish;
  for (const auto& p : pairs) {
    english.push_back(p.en);
    spanish.push_back(p.es);
  }
  const auto hyp = translate_texts(m.meta, params, english, o);
  const BleuScore b = corpus_bleu(hyp, spanish);
  tasks::EvalReport r;
  r.json = {{"task", "translate"},
            {"split", split},
            {"examples", pairs.size()},
            {"metric", "bleu"},
            {"value", b.score},
            {"bleu", {{"score", b.score},
                      {"precisions", b.precisions},
                      {"bp", b.bp},
                      {"sys_len", b.stats.sys_len},
                      {"ref_len", b.stats.ref_len},
                      {"signature", "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp (sacreBLEU defaults, ferry)"}}},
            {"decoding", {{"beam", o.beam}, {"length_penalty", o.length_penalty}, {"max_new_tokens", o.max_new_tokens}}}};
  std::set<std::string> books;
  for (const auto& p : pairs) books.insert(p.book);
  r.json["books"] = books;
  r.summary = str_cat(split, " ", b.summary(), " on ", pairs.size(), " verses (en→es, beam ", o.beam, ")");
  for (size_t i = 0; i < pairs.size(); ++i)
    r.predictions.push_back(pairs[i].ref + "\t" + pairs[i].en + "\t" + pairs[i].es + "\t" + hyp[i]);
  return r;
}

}  // namespace ferry::translate
