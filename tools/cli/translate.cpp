// tools/cli/translate.cpp — `ferry translate`: English lines on stdin → Spanish lines on stdout,
// with a model that `ferry finetune --task translate` wrote (<out>/model), decoded with the KV cache
// by beam search (or greedily with --beam 1).
//
//   echo "In the beginning, God created the heavens and the earth." | ferry translate --checkpoint runs/mt/model
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "base/error.h"
#include "engine/finetune/model_file.h"
#include "tools/cli/command.h"
#include "tools/tasks/model_setup.h"
#include "tools/translate/task.h"

namespace {

using namespace ferry;

struct TranslateArgs {
  std::string checkpoint;
  translate::DecodeOptions decode;
};

void run(const TranslateArgs& a) {
  const ModelFile f = load_model_file(a.checkpoint);
  tasks::TaskModel m;
  m.meta = tasks::ModelMeta::from_json(f.meta);
  if (m.meta.task != "translate")
    user_error("--checkpoint ", a.checkpoint, ": the model was trained for '", m.meta.task,
               "', not translate (ferry finetune --task translate)");
  m.batch = 1;
  const TaskGraph g = m.graph(false, 0);
  std::vector<float> params(static_cast<size_t>(g.graph.param_count()));
  if (load_params_by_name(f, g.graph, params) != static_cast<int>(g.graph.params.size()))
    user_error("--checkpoint ", a.checkpoint, ": the model folder lacks parameters of its graph");
  std::vector<std::string> lines;
  for (std::string line; std::getline(std::cin, line);) lines.push_back(line);
  const auto out = translate::translate_texts(m.meta, params, lines, a.decode);
  for (const auto& s : out) std::printf("%s\n", s.c_str());
  std::fflush(stdout);
}

void setup(CLI::App& app) {
  auto a = std::make_shared<TranslateArgs>();
  app.add_option("--checkpoint", a->checkpoint, "model written by ferry finetune --task translate (<out>/model.ckpt or its folder <out>)")
      ->required();
  app.add_option("--beam", a->decode.beam, "beam width (1: greedy)")->capture_default_str();
  app.add_option("--max-tokens", a->decode.max_new_tokens, "new tokens per line at most (0: up to the model's length)")
      ->capture_default_str();
  app.add_option("--length-penalty", a->decode.length_penalty,
                 "beam scores are sum(log p) / length^this (0: raw sums, favouring short outputs)")
      ->capture_default_str();
  app.add_option("--batch-size", a->decode.batch, "lines decoded together")->capture_default_str();
  app.callback([a] {
    if (a->decode.beam < 1) user_error("--beam must be at least 1, got ", a->decode.beam);
    if (a->decode.max_new_tokens < 0) user_error("--max-tokens must not be negative, got ", a->decode.max_new_tokens);
    if (a->decode.batch < 1) user_error("--batch-size must be at least 1, got ", a->decode.batch);
    run(*a);
  });
}

}  // namespace

FERRY_COMMAND(translate, "translate", "Translate English lines on stdin to Spanish with a fine-tuned translation model",
              setup);
