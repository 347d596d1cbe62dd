// tools/cli/finetune.cpp — `ferry finetune`: train a task head (and the trunk, as the techniques
// allow) from a pretrained model folder or from scratch; keep the best parameters on the dev metric;
// score the test split; write <out>/model.ckpt and <out>/eval.json.
//
//   ferry finetune --task lm --from-scratch --model tiny --vocab-size 8192 --out runs/pre   (pretrain)
//   ferry finetune --task sentiment --init runs/pre/model --labels 1000 --out runs/ft
//   ferry finetune --task sentiment --init runs/pre/model --from-scratch ...   (same architecture and
//                  vocabulary, fresh weights: the baseline every result is compared with)
//   ferry finetune --config configs/finetune_sentiment.toml --init runs/pre --out runs/ft --lr 3e-4
//   ferry finetune --task multi --tasks sentiment,ner --task-weights 1,1 --init ... (one trunk, two heads)
// --init takes any model tools/convert/load_model.h reads: a checkpoint in the one checkpoint format
// (engine/finetune/model_file.h) — a `ferry pretrain` checkpoint or run folder (GPT-2 vocabulary) or
// a `ferry finetune` output — or GPT-2 weights from an llm.c model file or safetensors.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <sstream>

#include "engine/backend.h"
#include "engine/data/shard.h"
#include "engine/device.h"
#include "base/error.h"
#include "engine/finetune/loop.h"
#include "engine/finetune/model_file.h"
#include "parallel/job_world.h"
#include "tools/cli/command.h"
#include "tools/config/flag_file.h"
#include "tools/convert/load_model.h"
#include "tools/tasks/electra.h"
#include "tools/tasks/evaluation.h"
#include "tools/tasks/multitask.h"

namespace {

using namespace ferry;
using namespace ferry::tasks;

struct Args {
  std::string task, init, model, out, freeze = "none", pooling, corpus = "wnut17", device = "auto", sources;
  std::string vocab_kind = "bpe";
  std::string heldout_shard;  // --task lm: where to write the held-out windows as a token shard
  std::string tasks = "sentiment,ner", task_weights;  // --task multi
  bool from_scratch = false;
  parallel::ParallelLayout layout;  // --tp, --pp, --zero1 (the pretrain flags); dp = world / (tp·pp)
  int vocab_size = 8192, steps = 200, batch = 16, seq_len = 128, warmup = 10, eval_every = 50, patience = 0;
  int lora_rank = 0, unfreeze_every = 0, adapt_steps = 0;
  int n_layer = 0, n_head = 0, n_embd = 0, max_seq_len = 0;  // preset overrides (0: the preset's)
  int generator_width = 0;                                    // --task rtd (0: half the width)
  float generator_lr_scale = 1.0f;                            // --task rtd (0: a frozen, near-uniform generator)
  float lr = 1e-3f, min_lr_ratio = 0.1f, layer_lr_decay = 1.0f, trunk_lr_scale = 1.0f, lora_alpha = 16.0f, weight_decay = 0.01f;
  size_t labels = 0, dev_limit = 500, test_limit = 0, lm_bytes = 0;
  uint64_t seed = 1337;
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t comma = s.find(',', start);
    const std::string item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

// Shuffled passes over the training examples, B at a time (MLM masks drawn afresh each time).
class TrainStream {
 public:
  TrainStream(const std::vector<Example>& ex, const TaskModel& m, uint64_t seed)
      : ex_(ex), m_(m), rng_(seed), in_(GraphInputs::of(m.graph(true, m.techniques.lora.rank))) {}
  Batch next() {
    std::vector<Example> owned;
    std::vector<const Example*> rows;
    for (int k = 0; k < m_.batch; ++k) {
      if (cursor_ == order_.size()) reshuffle();
      rows.push_back(&ex_[order_[cursor_++]]);
    }
    if (is_masked_lm(m_.meta)) {
      owned.reserve(rows.size());
      for (auto*& r : rows) {
        owned.push_back(*r);
        mask_for_mlm(owned.back(), m_.meta, rng_);
        r = &owned.back();
      }
    }
    return make_batch(in_, m_.meta.head.kind, rows, m_.batch, m_.meta.seq_len, m_.meta.vocab.pad());
  }
  const GraphInputs& inputs() const { return in_; }

 private:
  void reshuffle() {
    order_.resize(ex_.size());
    for (size_t i = 0; i < order_.size(); ++i) order_[i] = i;
    for (size_t i = order_.size(); i > 1; --i) std::swap(order_[i - 1], order_[rng_() % i]);
    cursor_ = 0;
  }
  const std::vector<Example>& ex_;
  const TaskModel& m_;
  std::mt19937_64 rng_;
  GraphInputs in_;
  std::vector<size_t> order_;
  size_t cursor_ = 0;
};

// The trunk's architecture and vocabulary: the --init model's, or a preset with a compact
// vocabulary of the tasks' own text.
void choose_trunk(const Args& a, const std::vector<std::string>& tasks, const DataOptions& dopt, TaskModel& m,
                  std::string& init_desc) {
  if (!a.init.empty()) {
    if (a.n_head > 0 || a.n_embd > 0 || a.max_seq_len > 0)
      user_error("--n-head/--n-embd/--max-seq-len shape a new model: with --init the architecture is ", a.init, "'s");
    const ModelFile f = convert::load_any_model_file(a.init);
    const ModelMeta base = ModelMeta::of(f);
    m.meta.config = base.config;
    m.meta.vocab = base.vocab;
    // --n-layer with --init keeps the model's first N blocks (its embeddings and final norm too): a
    // shallower trunk, or with --freeze trunk a probe of block N's features.
    if (a.n_layer > 0) {
      if (a.n_layer > base.config.n_layer)
        user_error("--n-layer ", a.n_layer, ": ", a.init, " has only ", base.config.n_layer, " blocks");
      m.meta.config.n_layer = a.n_layer;
      std::fprintf(stderr, "ferry: using the first %d of %s's %d blocks\n", a.n_layer, a.init.c_str(),
                   base.config.n_layer);
    }
    if (!a.from_scratch) init_desc = std::filesystem::absolute(f.path).lexically_normal().string();
    return;
  }
  const bool ner_only = tasks.size() == 1 && (tasks[0] == "ner" || tasks[0] == "rtd");  // encoder tasks
  m.meta.config = model_preset(a.model.empty() ? (ner_only ? "encoder-tiny" : "tiny") : a.model);
  if (a.n_layer > 0) m.meta.config.n_layer = a.n_layer;
  if (a.n_head > 0) m.meta.config.n_head = a.n_head;
  if (a.n_embd > 0) m.meta.config.n_embd = a.n_embd;
  if (a.max_seq_len > 0) m.meta.config.max_seq_len = a.max_seq_len;
  if (a.vocab_size > 0 && a.vocab_kind == "bpe") {
    m.meta.vocab = TaskVocab::bpe(a.vocab_size);
  } else if (a.vocab_size > 0) {
    std::vector<int64_t> counts;
    for (const auto& t : tasks) {
      std::fprintf(stderr, "ferry: counting GPT-2 pieces of the %s text\n", t.c_str());
      const auto c = gpt2_counts(t == "rtd" ? "lm" : t, dopt);
      if (counts.empty()) counts.assign(c.size(), 0);
      for (size_t i = 0; i < c.size(); ++i) counts[i] += c[i];
    }
    std::fprintf(stderr, "ferry: building a %d-piece vocabulary\n", a.vocab_size);
    m.meta.vocab = TaskVocab::compact_from_counts(counts, a.vocab_size);
  }
  m.meta.config.vocab_size = m.meta.vocab.size();
}

DataOptions data_options(const Args& a) {
  DataOptions dopt;
  dopt.seq_len = a.seq_len;
  dopt.train_labels = a.labels;
  dopt.dev_limit = a.dev_limit;
  dopt.test_limit = a.test_limit;
  dopt.seed = a.seed;
  dopt.corpus = a.corpus;
  if (!a.sources.empty()) dopt.lm_sources = split_list(a.sources);
  dopt.lm_bytes_per_source = a.lm_bytes;
  return dopt;
}

Techniques techniques_of(const Args& a, const GptConfig& c) {
  Techniques t;
  t.freeze = a.freeze;
  t.layer_lr_decay = a.layer_lr_decay;
  t.trunk_lr_scale = a.trunk_lr_scale;
  t.lora.rank = a.lora_rank;
  t.lora.alpha = a.lora_alpha;
  t.unfreeze_every = a.unfreeze_every;
  validate_techniques(t, c);
  return t;
}

LoopConfig loop_config(const Args& a) {
  LoopConfig lc;
  lc.max_steps = a.steps;
  lc.warmup_steps = a.warmup;
  lc.lr = a.lr;
  lc.min_lr = a.lr * a.min_lr_ratio;
  lc.eval_every = a.eval_every;
  lc.patience = a.patience;
  lc.unfreeze_every = a.unfreeze_every;
  lc.tokens_per_step = int64_t(a.batch) * a.seq_len;
  return lc;
}

// --task multi: one trunk, a head per task, rows of each batch drawn from the tasks by weight;
// each task scored and saved on its own (<out>/<task>/), and <out>/eval.json holding them all.
void run_multi(const Args& a) {
  const std::vector<std::string> names = split_list(a.tasks);
  if (names.size() < 2) user_error("--tasks: give at least two tasks for --task multi, got '", a.tasks, "'");
  for (const auto& t : names)
    if (t != "sentiment" && t != "ner") user_error("--tasks: '", t, "' (multi-task takes sentiment and ner)");
  std::vector<float> weights(names.size(), 1.0f);
  if (!a.task_weights.empty()) {
    const auto w = split_list(a.task_weights);
    if (w.size() != names.size()) user_error("--task-weights: ", w.size(), " weights for ", names.size(), " tasks");
    for (size_t k = 0; k < w.size(); ++k) {
      try {
        weights[k] = std::stof(w[k]);
      } catch (const std::exception&) {
        user_error("--task-weights: '", w[k], "' is not a number");
      }
    }
  }
  const DataOptions dopt = data_options(a);
  TaskModel base;
  base.batch = a.batch;
  base.layout = a.layout;
  base.adamw.weight_decay = a.weight_decay;
  base.meta.seq_len = a.seq_len;
  std::string init_desc = "scratch";
  choose_trunk(a, names, dopt, base, init_desc);
  if (a.seq_len > base.meta.config.max_seq_len)
    user_error("--seq-len ", a.seq_len, " exceeds the model's ", base.meta.config.max_seq_len, " positions");
  base.techniques = techniques_of(a, base.meta.config);
  std::fprintf(stderr, "ferry: %s\n", device_summary().c_str());

  std::vector<TaskData> data;
  std::vector<HeadSpec> heads;
  std::vector<std::vector<std::string>> tags;
  for (const auto& t : names) {
    data.push_back(load_task(t, base.meta.vocab, dopt));
    std::fprintf(stderr, "ferry: %s\n", data.back().description.c_str());
    if (data.back().train.empty()) user_error("task ", t, ": no training examples");
    heads.push_back(head_for_task(t, base.meta.config, a.pooling, data.back().tags));
    tags.push_back(data.back().tags.names);
  }
  for (size_t k = 0; k < names.size(); ++k)
    if (names[k] == "ner") base.meta.corpus = a.corpus;
  MultiTaskModel mm(base, heads, tags, weights);
  auto backend = make_backend(a.device, AutoDevice::Gpu);
  int loaded = 0;
  const std::vector<float> initial =
      mm.initial_parameters(a.seed, a.from_scratch ? std::string() : a.init, &loaded);
  std::fprintf(stderr, "ferry: multi-task %s: %zu heads on one %d-layer trunk, %d parameters loaded from %s\n",
               a.tasks.c_str(), mm.size(), base.meta.config.n_layer, loaded, init_desc.c_str());

  const MultiTaskInputs in = mm.inputs();
  std::mt19937_64 rng(a.seed + 1);
  std::vector<std::vector<size_t>> order(names.size());
  std::vector<size_t> cursor(names.size(), 0);
  auto next_example = [&](size_t k) -> const Example* {
    auto& o = order[k];
    if (cursor[k] == o.size()) {
      o.resize(data[k].train.size());
      for (size_t i = 0; i < o.size(); ++i) o[i] = i;
      for (size_t i = o.size(); i > 1; --i) std::swap(o[i - 1], o[rng() % i]);
      cursor[k] = 0;
    }
    return &data[k].train[o[cursor[k]++]];
  };
  LoopHooks h;
  h.n_layer = base.meta.config.n_layer;
  h.make_step = [&](int top) { return mm.make_step(*backend, top); };
  const StepRunner::DataShard shard = data_shard_of(a.layout);
  h.next_batches = [&](int) {  // every rank draws the global batch and keeps its rows
    std::vector<std::pair<int, const Example*>> rows;
    for (int k : mm.draw_row_tasks(rng)) rows.emplace_back(k, next_example(static_cast<size_t>(k)));
    return std::vector<Batch>{shard_rows(make_multitask_batch(in, rows, a.batch, a.seq_len, base.meta.vocab.pad()), shard)};
  };
  h.dev_metric = [&](StepRunner& s) {  // the mean of the tasks' dev metrics (accuracy, entity F1)
    const std::vector<float> p = s.parameters();
    double sum = 0;
    for (size_t k = 0; k < mm.size(); ++k) {
      const EvalReport r = evaluate_model(mm.task(k), *backend, mm.task_parameters(k, p), data[k], "dev");
      std::fprintf(stderr, "  dev %s: %s\n", names[k].c_str(), r.summary.c_str());
      sum += r.json["value"].get<double>();
    }
    return sum / double(mm.size());
  };
  const LoopResult res = run_finetune_loop(loop_config(a), h, initial);
  if (parallel::job_world().rank() != 0) return;  // one rank scores and writes

  const std::filesystem::path out(a.out);
  nlohmann::json all = {{"task", "multi"}, {"metric", "mean_task_metric"}, {"split", "test"}, {"init", init_desc},
                        {"steps", res.steps}, {"best_step", res.best_step}, {"dev_metric", res.best_metric},
                        {"task_weights", weights}, {"tasks", nlohmann::json::object()}};
  double sum = 0;
  size_t labels = 0;
  for (size_t k = 0; k < mm.size(); ++k) {
    const TaskModel& tm = mm.task(k);
    const std::vector<float> params = mm.task_parameters(k, res.best_params);
    const TaskGraph export_graph = tm.graph(false, 0);
    save_model_file(out / names[k] / kTaskModelFile, tm.meta.config, tm.meta.to_json(), export_graph.graph, params);
    EvalReport r = evaluate_model(tm, *backend, params, data[k], "test");
    r.json["n_train_labels"] = data[k].n_train_labels;
    r.json["init"] = init_desc;
    r.json["multi_task"] = a.tasks;
    write_eval(out / names[k], r, out / names[k] / "predictions.tsv");
    std::printf("multi-task %s test (init %s, %zu training labels): %s\n", names[k].c_str(), init_desc.c_str(),
                data[k].n_train_labels, r.summary.c_str());
    all["tasks"][names[k]] = r.json;
    sum += r.json["value"].get<double>();
    labels += data[k].n_train_labels;
  }
  write_history(out, res.history, "mean_task_metric");
  all["value"] = sum / double(mm.size());
  all["n_train_labels"] = labels;
  EvalReport summary;
  summary.json = all;
  write_eval(out, summary, "");
  std::fprintf(stderr, "ferry: models in %s/<task>/%s, metrics in %s\n", out.c_str(), kTaskModelFile,
               (out / "eval.json").c_str());
}

// --task rtd: ELECTRA's replaced-token detection on the LM text sources (tools/tasks/electra.h);
// the discriminator is the model written, a bidirectional trunk for `--init` of a task.
void run_rtd(const Args& a) {
  if (!a.init.empty() || !a.from_scratch)
    user_error("--task rtd pretrains a new discriminator: give --from-scratch (and no --init)");
  if (parallel::job_world().size() > 1 || a.layout.tp != 1 || a.layout.pp != 1 || a.layout.zero1)
    user_error("--task rtd trains two models in one process: run it without mpirun, --tp, --pp or --zero1");
  DataOptions dopt = data_options(a);
  TaskModel disc;
  disc.batch = a.batch;
  disc.adamw.weight_decay = a.weight_decay;
  disc.meta.seq_len = a.seq_len;
  disc.meta.task = "rtd";
  std::string init_desc = "scratch";
  choose_trunk(a, {"rtd"}, dopt, disc, init_desc);
  if (disc.meta.config.causal)
    user_error("--task rtd: the discriminator reads both directions: give an encoder preset (--model encoder-tiny)");
  if (a.seq_len > disc.meta.config.max_seq_len)
    user_error("--seq-len ", a.seq_len, " exceeds the model's ", disc.meta.config.max_seq_len, " positions");
  disc.meta.head = {"rtd", HeadKind::TokenClassification, 2, Pooling::Mean};
  disc.meta.tag_names = {"original", "replaced"};
  TaskModel gen = disc;
  gen.meta.config = generator_config(disc.meta.config,
                                     a.generator_width > 0 ? a.generator_width : disc.meta.config.n_embd / 2);
  gen.meta.task = "generator";
  gen.meta.head = {"generator", HeadKind::TokenClassification, disc.meta.config.vocab_size, Pooling::Mean};
  gen.meta.tag_names.clear();

  std::fprintf(stderr, "ferry: %s\n", device_summary().c_str());
  const TaskData text = load_task("lm", disc.meta.vocab, dopt);
  std::fprintf(stderr, "ferry: %s\n", text.description.c_str());
  std::fprintf(stderr,
               "ferry: rtd: discriminator %d layers, %d wide, vocab %d (%.2fM parameters); generator %d wide "
               "(%.2fM parameters)\n",
               disc.meta.config.n_layer, disc.meta.config.n_embd, disc.meta.config.vocab_size,
               double(disc.graph(true, 0).graph.param_count()) / 1e6, gen.meta.config.n_embd,
               double(gen.graph(true, 0).graph.param_count()) / 1e6);
  auto backend = make_backend(a.device, AutoDevice::Gpu);
  RtdConfig rc;
  rc.steps = a.steps;
  rc.warmup = a.warmup;
  rc.eval_every = a.eval_every;
  rc.lr = a.lr;
  rc.min_lr = a.lr * a.min_lr_ratio;
  rc.generator_lr_scale = a.generator_lr_scale;
  rc.seed = a.seed;
  rc.tokens_per_step = int64_t(a.batch) * a.seq_len;
  const RtdResult r = train_rtd(disc, gen, text.train, text.dev, *backend, rc);

  const std::filesystem::path out(a.out);
  save_model_file(out / kTaskModelFile, disc.meta.config, disc.meta.to_json(), disc.graph(false, 0).graph,
                  r.discriminator);
  EvalReport report;
  report.json = {{"task", "rtd"},
                 {"metric", "heldout_discriminator_loss"},
                 {"value", r.heldout_loss},
                 {"split", "heldout"},
                 {"heldout_replaced_fraction", r.heldout_replaced},
                 {"generator_train_loss", r.generator_loss},
                 {"generator_width", gen.meta.config.n_embd},
                 {"generator_lr_scale", a.generator_lr_scale},
                 {"steps", a.steps},
                 {"init", init_desc}};
  report.summary = str_cat("held-out discriminator loss ", r.heldout_loss, " (", 100.0 * r.heldout_replaced,
                           "% of positions replaced)");
  write_eval(out, report, "");
  write_history(out, r.history, "neg_heldout_discriminator_loss");
  std::printf("rtd heldout (init %s): %s\n", init_desc.c_str(), report.summary.c_str());
  std::fprintf(stderr, "ferry: model in %s, metrics in %s\n", (out / kTaskModelFile).c_str(), (out / "eval.json").c_str());
}

void run(const Args& a) {
  if (a.task.empty()) user_error("--task is required (sentiment, ner, lm, translate)");
  if (a.out.empty()) user_error("--out is required");
  if (a.init.empty() && !a.from_scratch) user_error("give --init MODEL, or --from-scratch");
  if (a.batch <= 0 || a.seq_len <= 0) user_error("--batch-size and --seq-len must be positive");
  if (a.adapt_steps < 0) user_error("--adapt-steps must be >= 0, got ", a.adapt_steps);
  if (a.adapt_steps > 0 && a.task != "sentiment")
    user_error("--adapt-steps applies to the sentiment task (its reviews' text), not ", a.task);
  if (a.task == "multi") return run_multi(a);
  if (a.task == "rtd") return run_rtd(a);

  const DataOptions dopt = data_options(a);
  TaskModel m;
  m.batch = a.batch;
  m.layout = a.layout;
  m.adamw.weight_decay = a.weight_decay;
  m.meta.seq_len = a.seq_len;
  m.meta.task = a.task;
  m.meta.corpus = a.task == "ner" ? a.corpus : "";
  std::string init_desc = "scratch";
  choose_trunk(a, {a.task}, dopt, m, init_desc);
  if (a.seq_len > m.meta.config.max_seq_len)
    user_error("--seq-len ", a.seq_len, " exceeds the model's ", m.meta.config.max_seq_len, " positions");

  std::fprintf(stderr, "ferry: %s\n", device_summary().c_str());
  TaskData data = load_task(a.task, m.meta.vocab, dopt);
  std::fprintf(stderr, "ferry: %s\n", data.description.c_str());
  if (data.train.empty()) user_error("task ", a.task, ": no training examples");
  m.meta.head = head_for_task(a.task, m.meta.config, a.pooling, data.tags);
  if (is_masked_lm(m.meta)) {
    // The held-out loss is the masked-token loss: the windows are masked once, with a fixed seed, so
    // every evaluation scores the same positions.
    std::mt19937_64 rng = heldout_mask_rng(a.seed);
    for (Example& e : data.dev) mask_for_mlm(e, m.meta, rng);
  }
  m.meta.tag_names = data.tags.names;
  m.techniques = techniques_of(a, m.meta.config);
  if (!a.heldout_shard.empty()) {
    // The held-out windows' inputs, in order, as one llm.c shard in the model's own ids: what
    // `ferry eval --task lm --seq-len T` scores (row k of its windows is held-out window k; only each
    // row's last target crosses into the next held-out window). Text the model never trained on.
    if (a.task != "lm" || is_masked_lm(m.meta)) user_error("--heldout-shard applies to --task lm with a causal model");
    std::vector<int32_t> ids;
    for (const Example& e : data.dev) ids.insert(ids.end(), e.ids.begin(), e.ids.end());
    if (!data.dev.empty()) ids.push_back(data.dev.back().token_labels.back());
    const std::filesystem::path shard(a.heldout_shard);
    std::error_code ec;
    if (shard.has_parent_path()) std::filesystem::create_directories(shard.parent_path(), ec);
    if (ec) user_error("--heldout-shard ", a.heldout_shard, ": its folder cannot be created: ", ec.message());
    data::write_shard(shard, std::span<const int32_t>(ids), m.meta.config.vocab_size);
    std::fprintf(stderr, "ferry: held-out windows (%zu tokens) written to %s\n", ids.size(), a.heldout_shard.c_str());
  }

  auto backend = make_backend(a.device, AutoDevice::Gpu);
  int loaded = 0;
  std::vector<float> initial =
      m.initial_parameters(a.seed, a.from_scratch ? std::string() : a.init, &loaded);
  {
    TaskGraph g = m.graph(true, m.techniques.lora.rank);
    apply_techniques(g.graph, m.meta.config, m.techniques);
    std::fprintf(stderr,
                 "ferry: %s %s: %d layers, %d wide, vocab %d, %s; %.2fM parameters (%.2fM trainable), %d loaded "
                 "from %s\n",
                 a.task.c_str(), m.meta.config.causal ? "GPT" : "encoder", m.meta.config.n_layer,
                 m.meta.config.n_embd, m.meta.config.vocab_size,
                 a.task == "sentiment" ? (std::string("pooling ") + pooling_name(m.meta.head.pooling)).c_str() : "",
                 double(g.graph.param_count()) / 1e6, double(trainable_count(g.graph)) / 1e6, loaded,
                 init_desc.c_str());
  }

  // Domain adaptation (ULMFiT): continued language-model training on the task's own unlabeled text
  // before the classifier — the trunk the task graph then starts from.
  if (a.adapt_steps > 0) {
    TaskModel lm = m;
    lm.meta.task = "lm";
    lm.meta.head = head_for_task("lm", m.meta.config, "", {});
    lm.techniques = {};
    TaskData text;
    for (const auto& e : data.train) {  // the training reviews only: test text stays unseen
      auto w = lm_windows(e.ids, std::min<int>(a.seq_len, static_cast<int>(e.ids.size()) - 1));
      for (auto& x : w) text.train.push_back(std::move(x));
    }
    DataOptions lo = dopt;
    lo.lm_sources = {"imdb"};
    lo.lm_bytes_per_source = 4'000'000;
    const TaskData pool = load_task("lm", m.meta.vocab, lo);
    for (const auto& e : pool.train) text.train.push_back(e);
    std::fprintf(stderr, "ferry: domain adaptation: %d LM steps on %zu windows of review text\n", a.adapt_steps,
                 text.train.size());
    TrainStream ls(text.train, lm, a.seed + 7);
    std::vector<float> lm_init = lm.initial_parameters(a.seed, "", nullptr);
    {  // carry the trunk in by name
      const TaskGraph tg = m.graph(true, m.techniques.lora.rank), lg = lm.graph(true, 0);
      for (const ParamInfo& p : lg.graph.params) {
        const int i = tg.graph.param_index(p.name);
        if (i >= 0)
          std::copy_n(initial.begin() + static_cast<std::ptrdiff_t>(tg.graph.params[i].offset), p.numel,
                      lm_init.begin() + static_cast<std::ptrdiff_t>(p.offset));
      }
    }
    auto step = lm.make_step(*backend, -1);
    step->set_parameters(lm_init);
    for (int s = 1; s <= a.adapt_steps; ++s) {
      const float lr = a.lr * (1.0f - 0.9f * float(s - 1) / float(a.adapt_steps));
      const auto r = step->train({shard_rows(ls.next(), step->data_shard())}, lr);
      if (s % 20 == 0 || s == 1) std::fprintf(stderr, "adapt %4d/%d | lm loss %.4f\n", s, a.adapt_steps, r.loss);
    }
    const std::vector<float> adapted = step->parameters();
    const TaskGraph tg = m.graph(true, m.techniques.lora.rank), lg = lm.graph(true, 0);
    for (const ParamInfo& p : lg.graph.params) {
      const int i = tg.graph.param_index(p.name);
      if (i >= 0)
        std::copy_n(adapted.begin() + static_cast<std::ptrdiff_t>(p.offset), p.numel,
                    initial.begin() + static_cast<std::ptrdiff_t>(tg.graph.params[i].offset));
    }
  }

  TrainStream stream(data.train, m, a.seed + 1);
  const LoopConfig lc = loop_config(a);
  LoopHooks h;
  h.n_layer = m.meta.config.n_layer;
  h.make_step = [&](int top) { return m.make_step(*backend, top); };
  const StepRunner::DataShard shard = data_shard_of(a.layout);
  h.next_batches = [&](int) { return std::vector<Batch>{shard_rows(stream.next(), shard)}; };
  std::unique_ptr<Inference> dev_inf;
  if (m.meta.head.kind == HeadKind::LanguageModel) {
    h.dev_metric = [&](StepRunner& s) {
      return -evaluate_loss(s, stream.inputs(), HeadKind::LanguageModel, data.dev, m.batch, m.meta.seq_len,
                            m.meta.vocab.pad(), 16);
    };
  } else {
    h.dev_metric = [&](StepRunner& s) {
      const EvalReport r = evaluate_model(m, *backend, m.exportable(s.parameters()), data, "dev");
      return r.json["value"].get<double>();
    };
  }
  const LoopResult res = run_finetune_loop(lc, h, initial);
  if (parallel::job_world().rank() != 0) return;  // one rank scores and writes

  const std::vector<float> best = m.exportable(res.best_params);
  const TaskGraph export_graph = m.graph(false, 0);
  const std::filesystem::path out(a.out);
  save_model_file(out / kTaskModelFile, m.meta.config, m.meta.to_json(), export_graph.graph, best);
  EvalReport report;
  const bool heldout_loss = m.meta.head.kind == HeadKind::LanguageModel && a.task != "translate";
  if (heldout_loss) {
    report.json = {{"task", "lm"}, {"metric", "heldout_loss"}, {"value", -res.best_metric}, {"split", "heldout"}};
    report.summary = str_cat("held-out LM loss ", -res.best_metric, " nats/token");
  } else {
    report = evaluate_model(m, *backend, best, data, "test");
  }
  report.json["n_train_labels"] = data.n_train_labels;
  report.json["init"] = init_desc;
  report.json["steps"] = res.steps;
  report.json["best_step"] = res.best_step;
  report.json["dev_metric"] = res.best_metric;
  report.json["stopped_early"] = res.stopped_early;
  report.json["techniques"] = {{"freeze", a.freeze}, {"layer_lr_decay", a.layer_lr_decay},
                               {"trunk_lr_scale", a.trunk_lr_scale},
                               {"lora_rank", a.lora_rank}, {"lora_alpha", a.lora_alpha},
                               {"unfreeze_every", a.unfreeze_every}, {"adapt_steps", a.adapt_steps}};
  write_eval(out, report, report.predictions.empty() ? "" : out / "predictions.tsv");
  write_history(out, res.history, heldout_loss ? "neg_heldout_loss" : report.json.value("metric", ""));
  std::printf("%s %s (init %s, %zu training labels): %s\n", a.task.c_str(), report.json.value("split", "").c_str(),
              init_desc.c_str(), data.n_train_labels, report.summary.c_str());
  std::fprintf(stderr, "ferry: model in %s, metrics in %s\n", (out / kTaskModelFile).c_str(), (out / "eval.json").c_str());
}

void setup(CLI::App& app) {
  auto a = std::make_shared<Args>();
  app.add_option("--task", a->task,
                 "sentiment | ner | lm | multi | translate (en→es verse pairs, BLEU) | rtd (ELECTRA pretraining)");
  app.add_option("--init", a->init, "model to start from (its architecture and vocabulary): a checkpoint file, a ferry pretrain run folder, a ferry finetune output folder, an llm.c model file (fp32 or bf16) or safetensors");
  app.add_flag("--from-scratch", a->from_scratch,
               "fresh weights (with --init: that model's architecture and vocabulary, not its weights)");
  app.add_option("--model", a->model, "preset without --init: tiny, micro, encoder-tiny, ... (default tiny; ner encoder-tiny)");
  app.add_option("--n-layer", a->n_layer, "blocks (overrides the preset's); with --init: keep that model's first N blocks");
  app.add_option("--n-head", a->n_head, "without --init: attention heads (overrides the preset's)");
  app.add_option("--n-embd", a->n_embd, "without --init: width (overrides the preset's)");
  app.add_option("--max-seq-len", a->max_seq_len, "without --init: positions (overrides the preset's)");
  app.add_option("--generator-width", a->generator_width, "rtd: the generator's width (default half the model's)");
  app.add_option("--generator-lr-scale", a->generator_lr_scale,
                 "rtd: the generator's learning rate as a multiple of the model's (default 1; 0 keeps it untrained: "
                 "replacements are near-uniform pieces)")
      ->check(CLI::Range(0.0, 10.0));
  app.add_option("--vocab-size", a->vocab_size, "without --init: compact vocabulary size (0: all of GPT-2's 50,257 pieces)");
  app.add_option("--vocab-kind", a->vocab_kind,
                 "without --init: bpe (GPT-2's first merges, lossless) | frequent (the task text's most frequent pieces, rarer ones <unk>)")
      ->check(CLI::IsMember({"bpe", "frequent"}));
  app.add_option("--out", a->out, "output folder: model.ckpt, eval.json, predictions.tsv");
  app.add_option("--labels", a->labels, "training labels to use (sentiment: reviews, stratified; ner: sentences; 0 all)");
  app.add_option("--steps", a->steps, "optimizer steps");
  app.add_option("--batch-size", a->batch, "examples per step");
  app.add_option("--seq-len", a->seq_len, "tokens per example (longer reviews keep head and tail)");
  app.add_option("--lr", a->lr, "peak learning rate");
  app.add_option("--min-lr-ratio", a->min_lr_ratio, "final learning rate as a fraction of --lr");
  app.add_option("--warmup", a->warmup, "warm-up steps");
  app.add_option("--weight-decay", a->weight_decay, "AdamW weight decay");
  app.add_option("--eval-every", a->eval_every, "steps between dev evaluations (0: only at the end)");
  app.add_option("--patience", a->patience, "early stopping: dev evaluations without improvement (0: off)");
  app.add_option("--dev-limit", a->dev_limit, "dev examples used (0: all)");
  app.add_option("--test-limit", a->test_limit, "test examples scored (stratified for sentiment; 0: all)");
  app.add_option("--freeze", a->freeze, "none | trunk | lower:N");
  app.add_option("--layer-lr-decay", a->layer_lr_decay, "discriminative learning rates: factor per block downwards");
  app.add_option("--trunk-lr-scale", a->trunk_lr_scale, "the trunk's learning rate as a fraction of --lr (the head keeps --lr)");
  app.add_option("--lora-rank", a->lora_rank, "LoRA adapters of this rank on every block matrix (0: off)");
  app.add_option("--lora-alpha", a->lora_alpha, "LoRA alpha (update scale alpha/rank)");
  app.add_option("--unfreeze-every", a->unfreeze_every, "gradual unfreezing: steps per newly trainable block (0: off)");
  app.add_option("--adapt-steps", a->adapt_steps, "sentiment: LM steps on the review text before the classifier");
  app.add_option("--pooling", a->pooling, "sentiment: first | last | mean (default: last for GPT, mean for an encoder)");
  app.add_option("--corpus", a->corpus, "ner: wnut17 | btc");
  app.add_option("--tasks", a->tasks, "multi: the tasks sharing the trunk, comma-separated (sentiment,ner)");
  app.add_option("--task-weights", a->task_weights,
                 "multi: each task's share of a batch's rows and loss weight, comma-separated (default equal)");
  app.add_option("--sources", a->sources, "lm: text sources, comma-separated (gutenberg, sotu, imdb)");
  app.add_option("--lm-bytes", a->lm_bytes, "lm: at most this many bytes per source (0: all)");
  app.add_option("--heldout-shard", a->heldout_shard,
                 "lm: also write the held-out windows as a token shard (for ferry eval --task lm)");
  app.add_option("--seed", a->seed, "seed for initialization, splits, subsets and order");
  app.add_option("--device", a->device, "auto | cpu | cuda");
  app.add_option("--tp", a->layout.tp, "tensor-parallel ranks (dp = world / (tp*pp); --batch-size is split over dp)");
  app.add_option("--pp", a->layout.pp, "pipeline stages");
  app.add_flag("--zero1", a->layout.zero1, "shard optimizer state across data-parallel ranks");
  auto config = std::make_shared<std::string>();
  app.add_option("--config", *config,
                 "TOML file of options, keys named as the flags in snake_case (batch_size = 16); flags given here override it");
  app.callback([a, config, &app] {
    if (!config->empty()) ferry::config::apply_flag_file(app, *config);
    run(*a);
  });
}

}  // namespace

FERRY_COMMAND(finetune, "finetune",
              "Fine-tune a model on a task (sentiment, ner, lm, translate) from a model folder or scratch",
              setup);
