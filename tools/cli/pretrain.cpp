// tools/cli/pretrain.cpp — `ferry pretrain`: train a GPT from a config file plus overrides, from
// fresh weights, from a model's weights (--init: any file tools/convert/load_model.h reads; step 0,
// fresh optimizer) or from a run's checkpoint (--resume). Without a [model] table in the config the
// architecture is the --init model's or the resumed checkpoint's; with one, they must agree.
#include <filesystem>
#include <memory>
#include <optional>

#include "engine/checkpoint/checkpoint.h"
#include "base/error.h"
#include "engine/train/trainer.h"
#include "parallel/step_factory.h"
#include "tools/cli/command.h"
#include "tools/convert/load_model.h"
#include "tools/data/prepare_corpus.h"
#include "tools/plot/loss_plot.h"
#include "tools/tasks/runner.h"
#include "tools/tokenizer/gpt2_tokenizer.h"

namespace {

struct PretrainArgs {
  std::string config;
  std::optional<int> max_steps, batch_size, seq_len, grad_accum, eval_every, tp, pp;
  bool zero1 = false;
  std::optional<uint64_t> seed;
  std::optional<float> lr;
  std::optional<std::string> out_dir, data, device, resume, attention, init;
};

// The model a run starts from: weights only (any optimizer state dropped), and a language model
// (a fine-tuned task model with a classifier head is not one).
std::shared_ptr<const ferry::Checkpoint> load_init_model(const std::string& path) {
  auto m = std::make_shared<ferry::Checkpoint>(ferry::convert::load_any_model(path));
  if (m->state.is_object() && m->state.contains("finetune")) {
    const auto meta = ferry::tasks::ModelMeta::from_json(m->state["finetune"]);
    if (meta.head.kind != ferry::HeadKind::LanguageModel)
      ferry::user_error("--init ", path, ": a ", meta.task, " model (a classification head), not a language model");
  }
  m->adam_m.clear();
  m->adam_v.clear();
  m->adam_m.shrink_to_fit();
  m->adam_v.shrink_to_fit();
  return m;
}

// The checkpoint --resume names ("auto": the newest in the run's folder; none there: "").
std::filesystem::path resume_file(const std::string& resume, const ferry::RunConfig& c) {
  if (resume != "auto") return resume;
  const auto found = ferry::list_checkpoints(ferry::checkpoint_dir(c));
  return found.empty() ? std::filesystem::path() : found.back().second;
}

// Shards are token files; anything else given to --data is a text file read byte-level.
bool looks_like_shards(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_directory(path, ec) || path.find(".bin") != std::string::npos;
}

void setup(CLI::App& app) {
  auto a = std::make_shared<PretrainArgs>();
  app.add_option("--config", a->config, "run config (TOML): [model], [train], [data]; see configs/")->required();
  app.add_option("--max-steps", a->max_steps, "override train.max_steps");
  app.add_option("--batch-size", a->batch_size, "override train.batch_size (sequences per micro-batch)");
  app.add_option("--seq-len", a->seq_len, "override train.seq_len");
  app.add_option("--grad-accum", a->grad_accum, "override train.grad_accum (micro-batches per step)");
  app.add_option("--lr", a->lr, "override train.lr (peak learning rate)");
  app.add_option("--eval-every", a->eval_every, "override train.eval_every (0 disables validation)");
  app.add_option("--seed", a->seed, "override train.seed");
  app.add_option("--out", a->out_dir, "override train.out_dir (metrics.jsonl, loss.svg, checkpoints/)");
  app.add_option("--data", a->data, "override data.path: token shards (a folder or a glob of *_train_*.bin) or a text file");
  app.add_option("--resume", a->resume,
                 "continue from a checkpoint file, or 'auto': the newest in <out>/checkpoints if any")
      ->expected(0, 1)
      ->default_str("auto");
  app.add_option("--init", a->init,
                 "start a new run (step 0, fresh optimizer) from a model's weights: a ferry checkpoint or pretrain run "
                 "folder, an llm.c model file (fp32 or bf16) or safetensors; the architecture is the file's (a [model] "
                 "table in the config must agree with it)");
  app.add_option("--device", a->device, "override train.device: auto, cpu or cuda");
  app.add_option("--attention", a->attention,
                 "override train.attention: ferry, cudnn or auto (the faster on this card per kernels_bench)");
  app.add_option("--tp", a->tp, "override parallel.tp (tensor-parallel ranks; dp = world / (tp*pp))");
  app.add_option("--pp", a->pp, "override parallel.pp (pipeline stages)");
  app.add_flag("--zero1", a->zero1, "shard optimizer state across data-parallel ranks (parallel.zero1)");
  app.callback([a] {
    ferry::RunConfig c = ferry::load_run_config(a->config);
    auto& t = c.train;
    if (a->max_steps) t.max_steps = *a->max_steps;
    if (a->batch_size) t.batch_size = *a->batch_size;
    if (a->seq_len) t.seq_len = *a->seq_len;
    if (a->grad_accum) t.grad_accum = *a->grad_accum;
    if (a->lr) t.lr = *a->lr;
    if (a->eval_every) t.eval_every = *a->eval_every;
    if (a->seed) t.seed = *a->seed;
    if (a->out_dir) t.out_dir = *a->out_dir;
    if (a->device) t.device = *a->device;
    if (a->attention) t.attention = *a->attention;
    if (a->tp) c.parallel.tp = *a->tp;
    if (a->pp) c.parallel.pp = *a->pp;
    if (a->zero1) c.parallel.zero1 = true;
    if (a->data) {
      c.data.path = *a->data;
      c.data.source = looks_like_shards(*a->data) ? "shards" : "text";
    }
    if (c.data.source == "shards" && c.data.path.empty()) c.data.path = ferry::data::default_corpus_dir().string();
    ferry::PretrainOptions o;
    if (a->resume) o.resume = a->resume->empty() ? "auto" : *a->resume;
    if (a->init && a->resume)
      ferry::user_error("--init and --resume cannot be combined: --init starts a new run (step 0, fresh optimizer) "
                        "from a model's weights, --resume continues a run from its checkpoint");
    if (a->init) {
      o.init = load_init_model(*a->init);
      o.init_source = *a->init;
      if (!c.model_table) {
        c.model = o.init->model;
      } else if (const std::string d = ferry::model_difference(c.model, o.init->model); !d.empty()) {
        ferry::user_error(a->config, ": [model] disagrees with --init ", *a->init, ": ", d,
                          " (config vs model file; without a [model] table the file's architecture is used)");
      }
    } else if (a->resume && !c.model_table) {
      // The architecture of the run being resumed (read twice, here and by the trainer: only a run
      // whose config leaves the model to its files pays that).
      if (const auto file = resume_file(o.resume, c); !file.empty()) c.model = ferry::read_checkpoint(file).model;
    }
    ferry::validate_run_config(c);
    if (c.model.vocab_size == ferry::tokenizer::Gpt2Tokenizer::kVocabSize && c.train.sample_every > 0) {
      auto tok = std::make_shared<ferry::tokenizer::Gpt2Tokenizer>(
          ferry::tokenizer::Gpt2Tokenizer::load(ferry::tokenizer::Gpt2Tokenizer::default_dir()));
      o.encode = [tok](const std::string& s) { return tok->encode(s); };
      o.decode = [tok](const std::vector<int32_t>& ids) { return tok->decode(ids); };
    }
    const std::string title = "ferry pretrain: " + std::to_string(c.model.n_layer) + " layers x " +
                              std::to_string(c.model.n_embd) + ", vocab " + std::to_string(c.model.vocab_size) +
                              ", " + c.data.source + " (" + c.train.out_dir + ")";
    o.on_metrics = [title](const std::filesystem::path& metrics) {
      ferry::plot::write_loss_plot(metrics, metrics.parent_path() / "loss.svg", title);
    };
    o.make_step = ferry::parallel::make_gpt_step;
    ferry::pretrain(c, o);
  });
}

}  // namespace

FERRY_COMMAND(pretrain, "pretrain", "Pretrain a GPT-family model (next-token prediction) from a config", setup);
