// tools/cli/pretrain.cpp — `ferry pretrain`: train a GPT from a config file plus overrides.
#include <filesystem>
#include <memory>
#include <optional>

#include "engine/error.h"
#include "engine/train/trainer.h"
#include "tools/cli/command.h"
#include "tools/data/prepare_corpus.h"
#include "tools/plot/loss_plot.h"
#include "tools/tokenizer/gpt2_tokenizer.h"

namespace {

struct PretrainArgs {
  std::string config;
  std::optional<int> max_steps, batch_size, seq_len, grad_accum, eval_every, tp, pp;
  bool zero1 = false;
  std::optional<uint64_t> seed;
  std::optional<float> lr;
  std::optional<std::string> out_dir, data, device, resume, attention;
};

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
    ferry::validate_run_config(c);
    ferry::PretrainOptions o;
    if (a->resume) o.resume = a->resume->empty() ? "auto" : *a->resume;
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
    ferry::pretrain(c, o);
  });
}

}  // namespace

FERRY_COMMAND(pretrain, "pretrain", "Pretrain a GPT-family model (next-token prediction) from a config", setup);
