// tools/tasks/evaluation.cpp
#include "tools/tasks/evaluation.h"

#include <fstream>

#include "engine/checkpoint/atomic_file.h"
#include "base/error.h"
#include "tools/translate/task.h"

namespace ferry::tasks {

EvalReport evaluate_model(const TaskModel& m, Backend& backend, const std::vector<float>& params, const TaskData& data,
                          const std::string& split) {
  if (split != "dev" && split != "test") user_error("--split: '", split, "' (dev or test)");
  const bool test = split == "test";
  const auto& examples = test ? data.test : data.dev;
  if (m.meta.task == "translate") return translate::evaluate_translation(m, params, examples.size(), split);
  auto inf = m.make_inference(backend);
  inf->set_parameters(params);
  const TaskGraph g = m.graph(false, 0);
  const GraphInputs in = GraphInputs::of(g);
  EvalReport r;
  r.json = {{"task", m.meta.task}, {"split", split}, {"examples", examples.size()}};
  if (m.meta.head.kind == HeadKind::SequenceClassification) {
    const auto e = evaluate_classifier(*inf, in, examples, m.batch, m.meta.seq_len, m.meta.vocab.pad());
    r.json["metric"] = "accuracy";
    r.json["value"] = e.accuracy;
    r.json["confusion"] = {{"labels", {"negative", "positive"}},
                           {"rows_gold_cols_predicted", {{e.confusion[0][0], e.confusion[0][1]},
                                                         {e.confusion[1][0], e.confusion[1][1]}}}};
    r.summary = str_cat(split, " accuracy ", e.accuracy * 100, "% on ", examples.size(),
                        " reviews; confusion [gold neg: ", e.confusion[0][0], " neg, ", e.confusion[0][1],
                        " pos | gold pos: ", e.confusion[1][0], " neg, ", e.confusion[1][1], " pos]");
    for (size_t i = 0; i < examples.size(); ++i)
      r.predictions.push_back(str_cat(i, "\t", examples[i].label, "\t", e.predicted[i], "\t", e.positive_probability[i]));
  } else if (m.meta.head.kind == HeadKind::TokenClassification) {
    const auto& sentences = test ? data.test_sentences : data.dev_sentences;
    const auto first = first_tokens_of(sentences, m.meta.vocab, m.meta.seq_len);
    TagSet tags;
    tags.names = m.meta.tag_names;
    const auto e = evaluate_tagger(*inf, in, examples, sentences, first, tags, m.batch, m.meta.seq_len,
                                   m.meta.vocab.pad());
    const auto& o = e.scorer.overall();
    r.json["metric"] = "entity_f1";
    r.json["value"] = o.f1();
    r.json["precision"] = o.precision();
    r.json["recall"] = o.recall();
    r.json["token_accuracy"] = e.scorer.tokens() ? double(e.scorer.tokens_correct()) / e.scorer.tokens() : 0.0;
    r.summary = str_cat(split, " entity F1 ", o.f1() * 100, " (P ", o.precision() * 100, ", R ", o.recall() * 100,
                        "; ", o.correct, " of ", o.gold, " gold entities, ", o.predicted, " predicted)");
    for (const auto& [type, c] : e.scorer.per_type()) {
      r.json["per_type"][type] = {{"precision", c.precision()}, {"recall", c.recall()}, {"f1", c.f1()},
                                  {"gold", c.gold}, {"predicted", c.predicted}, {"correct", c.correct}};
      r.summary += str_cat("\n  ", type, ": F1 ", c.f1() * 100, " (", c.correct, "/", c.gold, " gold, ", c.predicted,
                           " predicted)");
    }
    // conlleval's input layout: word, gold, predicted; a blank line between sentences.
    for (size_t s = 0; s < sentences.size(); ++s) {
      for (size_t w = 0; w < sentences[s].words.size(); ++w)
        r.predictions.push_back(sentences[s].words[w] + " " + sentences[s].tags[w] + " " + e.predicted[s][w]);
      r.predictions.push_back("");
    }
  } else {
    user_error("eval: task ", m.meta.task, " has no labelled metric (its held-out loss is in metrics of finetune)");
  }
  return r;
}

void write_eval(const std::filesystem::path& dir, const EvalReport& r, const std::filesystem::path& predictions_file) {
  std::filesystem::create_directories(dir);
  std::ofstream out(dir / "eval.json", std::ios::trunc);
  out << r.json.dump(2) << "\n";
  if (!out) user_error("cannot write ", (dir / "eval.json").string());
  if (!predictions_file.empty()) {
    std::ofstream p(predictions_file, std::ios::trunc);
    for (const auto& line : r.predictions) p << line << "\n";
    if (!p) user_error("cannot write predictions file ", predictions_file.string());
  }
}

void write_history(const std::filesystem::path& dir, const std::vector<LoopRecord>& history, const std::string& metric) {
  std::string text;
  for (const LoopRecord& r : history) {
    nlohmann::json j = {{"step", r.step}, {"train_loss", r.train_loss}, {"lr", r.lr}};
    if (r.evaluated) {
      j["dev"] = r.dev_metric;
      j["metric"] = metric;
    }
    text += j.dump() + "\n";
  }
  std::filesystem::create_directories(dir);
  write_file_atomically(dir / "metrics.jsonl", text);
}

}  // namespace ferry::tasks
