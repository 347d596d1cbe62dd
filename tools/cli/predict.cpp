// tools/cli/predict.cpp — `ferry predict MODEL`: one text per stdin line → its label (sentiment:
// "positive<TAB>0.93") or its tagged spans (ner: words split on whitespace, entities bracketed:
// "[PER Ada Lovelace] visited [LOC London]").
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>

#include "engine/backend.h"
#include "base/error.h"
#include "engine/finetune/model_file.h"
#include "tools/cli/command.h"
#include "tools/convert/load_model.h"
#include "tools/tasks/model_setup.h"

namespace {

using namespace ferry;
using namespace ferry::tasks;

struct Args {
  std::string model, device = "auto";
};

void run(const Args& a) {
  const ModelFile f = convert::load_any_model_file(a.model);
  TaskModel m;
  m.meta = ModelMeta::of(f);
  m.batch = 1;
  if (m.meta.head.kind == HeadKind::LanguageModel) user_error("predict: ", a.model, " is a language model, not a task model");
  TaskGraph g = m.graph(false, 0);
  std::vector<float> params(static_cast<size_t>(g.graph.param_count()));
  load_params_by_name(f, g.graph, params);
  auto backend = make_backend(a.device, AutoDevice::Gpu);
  auto inf = m.make_inference(*backend);
  inf->set_parameters(params);
  const GraphInputs in = GraphInputs::of(g);
  const auto tok = tokenizer::Gpt2Tokenizer::load(tokenizer::Gpt2Tokenizer::default_dir());
  const int T = m.meta.seq_len;
  std::string line;
  while (std::getline(std::cin, line)) {
    if (m.meta.head.kind == HeadKind::SequenceClassification) {
      Example e;
      e.ids = head_and_tail(m.meta.vocab.encode(tok, line), T);
      if (e.ids.empty()) e.ids.push_back(m.meta.vocab.separator());
      const auto l = inf->logits(make_batch(in, m.meta.head.kind, {&e}, 1, T, m.meta.vocab.pad()));
      const double p = 1.0 / (1.0 + std::exp(double(l[0]) - l[1]));
      std::printf("%s\t%.4f\n", p > 0.5 ? "positive" : "negative", p > 0.5 ? p : 1 - p);
    } else {
      std::istringstream ws(line);
      std::vector<std::string> words;
      for (std::string w; ws >> w;) words.push_back(w);
      const AlignedSentence al = align_words(tok, m.meta.vocab, words, T);
      Example e;
      e.ids = al.ids.empty() ? std::vector<int32_t>{m.meta.vocab.separator()} : al.ids;
      const auto l = inf->logits(make_batch(in, m.meta.head.kind, {&e}, 1, T, m.meta.vocab.pad()));
      const size_t K = m.meta.tag_names.size();
      std::vector<std::string> tags(words.size(), "O");
      for (size_t w = 0; w < words.size(); ++w) {
        if (al.first_token[w] < 0) continue;
        const float* x = l.data() + static_cast<size_t>(al.first_token[w]) * K;
        tags[w] = m.meta.tag_names[std::max_element(x, x + K) - x];
      }
      std::string out;
      size_t w = 0;
      for (const Entity& ent : bio_entities(tags)) {
        for (; w < static_cast<size_t>(ent.begin); ++w) out += (out.empty() ? "" : " ") + words[w];
        out += (out.empty() ? "[" : " [") + ent.type;
        for (; w < static_cast<size_t>(ent.end); ++w) out += " " + words[w];
        out += "]";
      }
      for (; w < words.size(); ++w) out += (out.empty() ? "" : " ") + words[w];
      std::printf("%s\n", out.c_str());
    }
    std::fflush(stdout);
  }
}

void setup(CLI::App& app) {
  auto a = std::make_shared<Args>();
  app.add_option("model", a->model, "model folder written by ferry finetune (<out>/model)")->required();
  app.add_option("--device", a->device, "auto (the GPU when one is usable) | cpu | cuda");
  app.callback([a] { run(*a); });
}

}  // namespace

FERRY_COMMAND(predict, "predict", "Label text from stdin with a fine-tuned model (sentiment label or NER spans)",
              setup);
