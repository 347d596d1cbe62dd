// tools/cli/eval.cpp — `ferry eval MODEL`: score a fine-tuned model folder on its task's dev or test
// split: the metric, the confusion matrix (sentiment) or per-type F1 (ner), predictions to a file,
// and eval.json.
#include <cstdio>
#include <filesystem>
#include <memory>

#include "engine/backend.h"
#include "engine/error.h"
#include "engine/finetune/model_file.h"
#include "tools/cli/command.h"
#include "tools/tasks/evaluation.h"

namespace {

using namespace ferry;
using namespace ferry::tasks;

struct Args {
  std::string model, task, split = "test", out, predictions, device = "auto", corpus;
  size_t limit = 0;
  uint64_t seed = 1337;
  int batch = 16;
};

void run(const Args& a) {
  const ModelFile f = load_model_file(a.model);
  TaskModel m;
  m.meta = ModelMeta::of(f);
  m.batch = a.batch;
  if (!a.task.empty() && a.task != m.meta.task)
    user_error("--task ", a.task, ": the model in ", a.model, " was trained for ", m.meta.task);
  if (m.meta.task == "lm") user_error("eval: an lm model has no labelled split (fine-tune it on a task first)");
  DataOptions o;
  o.seq_len = m.meta.seq_len;
  o.seed = a.seed;
  o.corpus = a.corpus.empty() ? m.meta.corpus : a.corpus;
  o.train_labels = 1;  // the training side is not needed
  (a.split == "test" ? o.test_limit : o.dev_limit) = a.limit;
  const TaskData data = load_task(m.meta.task, m.meta.vocab, o);
  TaskGraph g = m.graph(false, 0);
  std::vector<float> params(static_cast<size_t>(g.graph.param_count()));
  if (load_params_by_name(f, g.graph, params) != static_cast<int>(g.graph.params.size()))
    user_error("model '", a.model, "' lacks parameters of its own task graph");
  auto backend = make_backend(a.device, AutoDevice::Gpu);
  EvalReport r = evaluate_model(m, *backend, params, data, a.split);
  r.json["model"] = std::filesystem::absolute(a.model).lexically_normal().string();
  const std::filesystem::path out = a.out.empty() ? f.path.parent_path() : std::filesystem::path(a.out);
  const std::filesystem::path pred =
      a.predictions.empty() ? out / (a.split + "_predictions.tsv") : std::filesystem::path(a.predictions);
  write_eval(out, r, pred);
  std::printf("%s %s: %s\n", m.meta.task.c_str(), a.split.c_str(), r.summary.c_str());
  std::fprintf(stderr, "ferry: %s and %s written\n", (out / "eval.json").c_str(), pred.c_str());
}

void setup(CLI::App& app) {
  auto a = std::make_shared<Args>();
  app.add_option("model", a->model, "model written by ferry finetune (<out>/model.ckpt or its folder <out>)")->required();
  app.add_option("--task", a->task, "check that the model was trained for this task (sentiment, ner)");
  app.add_option("--split", a->split, "dev | test");
  app.add_option("--limit", a->limit, "score at most this many examples (stratified for sentiment; 0: all)");
  app.add_option("--corpus", a->corpus, "ner: wnut17 | btc (default: the model's)");
  app.add_option("--out", a->out, "folder for eval.json (default: the model's folder)");
  app.add_option("--predictions", a->predictions, "predictions file (default: <out>/<split>_predictions.tsv)");
  app.add_option("--seed", a->seed, "the split's seed (must match fine-tuning's)");
  app.add_option("--batch-size", a->batch, "examples per forward pass");
  app.add_option("--device", a->device, "auto (the GPU when one is usable) | cpu | cuda");
  app.callback([a] { run(*a); });
}

}  // namespace

FERRY_COMMAND(eval, "eval", "Score a fine-tuned model on its task's dev or test split (writes eval.json)", setup);
