// tools/cli/pretrain.cpp — `ferry pretrain`: train a GPT from a config file plus overrides.
#include <memory>
#include <optional>

#include "engine/error.h"
#include "engine/train/trainer.h"
#include "tools/cli/command.h"

namespace {

struct PretrainArgs {
  std::string config;
  std::optional<int> max_steps, batch_size, seq_len, grad_accum, eval_every, tp, pp;
  bool zero1 = false;
  std::optional<uint64_t> seed;
  std::optional<float> lr;
  std::optional<std::string> out_dir, data, device;
};

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
  app.add_option("--out", a->out_dir, "override train.out_dir (metrics.jsonl, config.json)");
  app.add_option("--data", a->data, "override data.path (a text file, or shards: a folder or glob)");
  app.add_option("--device", a->device, "override train.device: auto, cpu or cuda");
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
    if (a->tp) c.parallel.tp = *a->tp;
    if (a->pp) c.parallel.pp = *a->pp;
    if (a->zero1) c.parallel.zero1 = true;
    if (a->data) {
      c.data.path = *a->data;
      if (c.data.source == "synthetic") c.data.source = "text";
    }
    ferry::validate_run_config(c);
    ferry::pretrain(c, ferry::make_data_sources(c));
  });
}

}  // namespace

FERRY_COMMAND(pretrain, "pretrain", "Pretrain a GPT-family model (next-token prediction) from a config", setup);
