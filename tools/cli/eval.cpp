// tools/cli/eval.cpp — `ferry eval`: score a model.
//
//   ferry eval MODEL [--split dev|test] [--limit N] ...
//       a fine-tuned task model (sentiment, ner) on its task's dev or test split: the metric, the
//       confusion matrix (sentiment) or per-type F1 (ner), predictions to a file, and eval.json.
//   ferry eval --task lm|mlm --model MODEL --data DIR|GLOB [--batch-size B] [--seq-len T] [--batches N]
//       a language model's mean loss over token shards (tools/tasks/lm_eval.h): one JSON line on
//       stdout, {"loss", "perplexity", "tokens", "windows"}, and nothing else there (progress and
//       notices go to stderr), so scripts read it. The task defaults to the model's own: a task
//       model's, and for a model without one (a ferry pretrain checkpoint, llm.c, safetensors) lm
//       when causal, mlm when bidirectional.
// MODEL is anything tools/convert/load_model.h reads, given as the positional argument or --model.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include "engine/backend.h"
#include "engine/device.h"
#include "base/error.h"
#include "tools/cli/command.h"
#include "tools/convert/load_model.h"
#include "tools/tasks/evaluation.h"
#include "tools/tasks/lm_eval.h"

namespace {

using namespace ferry;
using namespace ferry::tasks;

struct Args {
  std::string model, model_flag, task, split = "test", out, predictions, device = "auto", corpus, data;
  size_t limit = 0, batches = 0;
  uint64_t seed = 1337;
  std::optional<int> batch;
  int seq_len = 0;
};

// Flags of the other mode, refused rather than silently ignored.
void refuse_flags(const CLI::App& app, std::initializer_list<const char*> flags, const std::string& mode) {
  for (const char* f : flags)
    if (app.count(f) > 0) user_error(f, " does not apply to ", mode);
}

void run_lm(const Args& a, const CLI::App& app, const ModelFile& f, const std::string& task) {
  refuse_flags(app, {"--split", "--limit", "--corpus", "--out", "--predictions"},
               "--task " + task + " (a loss over token shards; those flags are for task models)");
  // Unset means the default; a value given must be a size.
  if (a.batch && *a.batch <= 0) user_error("--batch-size must be positive, got ", *a.batch);
  if (app.count("--seq-len") > 0 && a.seq_len <= 0) user_error("--seq-len must be positive, got ", a.seq_len);
  LmEvalOptions o;
  o.task = task;
  o.data = a.data;
  o.batch = a.batch.value_or(0);
  o.seq_len = a.seq_len;
  o.max_windows = a.batches;
  o.seed = a.seed;
  auto backend = make_backend(a.device, AutoDevice::Gpu);
  const GptConfig& c = f.config;
  std::fprintf(stderr, "ferry: %s\nferry: eval %s: %s (%d layers, %d heads, %d wide, vocab %d, %s) on the %s backend\n",
               device_summary().c_str(), task.c_str(), f.path.c_str(), c.n_layer, c.n_head, c.n_embd, c.vocab_size,
               c.causal ? "causal" : "bidirectional", backend->name().c_str());
  size_t every = 0;
  const LmEvalResult r = evaluate_lm(f, *backend, o, [&](size_t done, size_t total, double loss) {
    if (every == 0) {
      every = std::max<size_t>(1, total / 20);
      std::fprintf(stderr, "ferry: %zu windows of %d x %d (+1) tokens from '%s'\n", total,
                   o.batch ? o.batch : kDefaultBatch, o.seq_len ? o.seq_len : std::min(kDefaultSeqLen, c.max_seq_len),
                   a.data.c_str());
    }
    if (done % every == 0 || done == total)
      std::fprintf(stderr, "eval %zu/%zu | loss %.4f\n", done, total, loss);
  });
  const std::string line = r.json().dump() + "\n";
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

void run_task(const Args& a, const CLI::App& app, const ModelFile& f, const ModelMeta& meta) {
  refuse_flags(app, {"--data", "--seq-len", "--batches"}, "a " + meta.task + " model (they are for --task lm|mlm)");
  TaskModel m;
  m.meta = meta;
  m.batch = a.batch.value_or(16);
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
    user_error("model '", f.path.string(), "' lacks parameters of its own task graph");
  auto backend = make_backend(a.device, AutoDevice::Gpu);
  EvalReport r = evaluate_model(m, *backend, params, data, a.split);
  r.json["model"] = std::filesystem::absolute(f.path).lexically_normal().string();
  const std::filesystem::path out = a.out.empty() ? f.path.parent_path() : std::filesystem::path(a.out);
  const std::filesystem::path pred =
      a.predictions.empty() ? out / (a.split + "_predictions.tsv") : std::filesystem::path(a.predictions);
  write_eval(out, r, pred);
  std::printf("%s %s: %s\n", m.meta.task.c_str(), a.split.c_str(), r.summary.c_str());
  std::fprintf(stderr, "ferry: %s and %s written\n", (out / "eval.json").c_str(), pred.c_str());
}

void run(const Args& a, const CLI::App& app) {
  if (!a.model.empty() && !a.model_flag.empty() && a.model != a.model_flag)
    user_error("two models given: '", a.model, "' and --model '", a.model_flag, "'");
  const std::string path = a.model.empty() ? a.model_flag : a.model;
  if (path.empty()) user_error("no model given (MODEL or --model MODEL)");
  if (!a.task.empty() && a.task != "lm" && a.task != "mlm" && a.task != "sentiment" && a.task != "ner")
    user_error("--task ", a.task, ": sentiment, ner (task models) or lm, mlm (a loss over token shards)");
  const ModelFile f = convert::load_any_model_file(path);
  // A model with no task of its own (pretraining, imported weights) or a language-model task model
  // is scored on token shards; the others on their task's split.
  std::optional<ModelMeta> meta;
  if (!f.pretraining()) meta = ModelMeta::from_json(f.meta);
  const bool lm_model = !meta || meta->head.kind == HeadKind::LanguageModel;
  std::string task = a.task;
  if (task.empty()) task = lm_model && (!meta || meta->task == "lm") ? default_lm_task(f) : meta->task;
  if (task == "lm" || task == "mlm") return run_lm(a, app, f, task);
  if (!meta || task != meta->task)
    user_error("--task ", task, ": the model in ", path, " was trained for ", meta ? meta->task : "language modelling",
               lm_model ? " (score it with --task lm or mlm and --data)" : "");
  run_task(a, app, f, *meta);
}

void setup(CLI::App& app) {
  auto a = std::make_shared<Args>();
  app.add_option("model", a->model,
                 "the model: a ferry checkpoint, a ferry pretrain run folder, a ferry finetune output folder "
                 "(<out>/model.ckpt), an llm.c model file (.bin) or safetensors");
  app.add_option("--model", a->model_flag, "the model, as a flag (same as MODEL)");
  app.add_option("--task", a->task,
                 "sentiment | ner: a task model on its split; lm | mlm: next-token (causal) or masked-token "
                 "(encoder) loss over --data (default: the model's own; lm or mlm for a model without a task)");
  app.add_option("--data", a->data,
                 "lm/mlm: token shards (llm.c layout): a folder (its *_val_* shards, else every *.bin), a glob or a file");
  app.add_option("--batch-size", a->batch,
                 "lm/mlm: rows per window (default 4, llm.c's); task models: examples per forward pass (default 16)");
  app.add_option("--seq-len", a->seq_len, "lm/mlm: tokens per row (default min(1024, the model's max_seq_len))");
  app.add_option("--batches", a->batches,
                 "lm/mlm: score the first N windows of B x T (+1) tokens, in shard order (default 0: every whole window)");
  app.add_option("--split", a->split, "task models: dev | test");
  app.add_option("--limit", a->limit, "task models: score at most this many examples (stratified for sentiment; 0: all)");
  app.add_option("--corpus", a->corpus, "ner: wnut17 | btc (default: the model's)");
  app.add_option("--out", a->out, "task models: folder for eval.json (default: the model's folder)");
  app.add_option("--predictions", a->predictions, "task models: predictions file (default: <out>/<split>_predictions.tsv)");
  app.add_option("--seed", a->seed, "task models: the split's seed (must match fine-tuning's); mlm: the masking seed");
  app.add_option("--device", a->device, "auto (the GPU when one is usable) | cpu | cuda");
  app.footer(
      "Language-model loss: the shards are read as llm.c's validation loader reads them (windows of B x T + 1 "
      "tokens at stride B x T, shard by shard in name order, a shard's tail shorter than a window unread); the "
      "loss is the mean next-token (lm) or masked-token (mlm) cross-entropy in nats, and stdout holds one JSON "
      "line: {\"loss\":...,\"perplexity\":...,\"tokens\":...,\"windows\":...}. Shard ids must be the model's own.\n");
  app.callback([a, &app] { run(*a, app); });
}

}  // namespace

FERRY_COMMAND(eval, "eval",
              "Score a model: a task model on its split, or a language model's loss over token shards (--task lm|mlm)",
              setup);
