// tests/data/pretrain_init_test.cpp — `ferry pretrain --init MODEL`: a new run (step 0, fresh
// AdamW) from a model's weights.
//
// What "fresh optimizer at step 0 from these weights" means is pinned by an independent route to the
// same start: --resume from a checkpoint at step 0 that holds the same weights with zeroed moments
// and the data stream at its beginning. Both runs must write the same metrics (timing fields aside),
// the same samples and the same final parameters and moments, bit for bit.
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "engine/checkpoint/checkpoint.h"
#include "engine/train/run_config.h"
#include "engine/train/trainer.h"
#include "tests/support/support.h"
#include "tools/tasks/model_setup.h"

namespace ferry {
namespace {

namespace fs = std::filesystem;

using test::deterministic_metrics;

const char* kModel = R"([model]
preset = "nano"
vocab_size = 256
n_layer = 2
)";

const char* kTrain = R"(
[train]
batch_size = 2
seq_len = 16
max_steps = 2
warmup_steps = 1
lr = 3e-3
eval_every = 1
eval_batches = 2
sample_every = 1
sample_tokens = 4
checkpoint_every = 2

[data]
source = "synthetic"
)";

fs::path write_config(const fs::path& file, bool with_model) {
  std::ofstream(file) << (with_model ? kModel : "") << kTrain;
  return file;
}

// A trained checkpoint to start from: 3 steps of the same architecture, with AdamW moments and a
// step count that --init must not carry over (no samples, so its sampler RNG is the seed's own).
fs::path source_checkpoint(const fs::path& dir) {
  const fs::path cfg = dir / "source.toml";
  std::ofstream(cfg) << kModel << "[train]\nbatch_size = 2\nseq_len = 16\ncheckpoint_every = 3\n";
  const auto r = test::run_command(test::ferry_binary() + " pretrain --config " + cfg.string() + " --out " +
                                   (dir / "source").string() +
                                   " --max-steps 3 --eval-every 0 --seed 7");  // step 3 is checkpointed (the last)
  EXPECT_EQ(r.exit_code, 0) << r.out;
  return dir / "source" / "checkpoints" / "step_00000003.ckpt";
}

std::string sample_lines(const std::string& out) {
  std::string s;
  for (size_t at = out.find("sample @ step"); at != std::string::npos; at = out.find("sample @ step", at + 1))
    s += out.substr(at, out.find('\n', at) - at) + "\n";
  return s;
}

void expect_same_final_state(const fs::path& a, const fs::path& b) {
  const Checkpoint x = read_checkpoint(a), y = read_checkpoint(b);
  ASSERT_EQ(x.parameters.size(), y.parameters.size());
  EXPECT_EQ(0, std::memcmp(x.parameters.data(), y.parameters.data(), x.parameters.size() * 4));
  ASSERT_EQ(x.adam_m.size(), y.adam_m.size());
  EXPECT_EQ(0, std::memcmp(x.adam_m.data(), y.adam_m.data(), x.adam_m.size() * 4));
  EXPECT_EQ(0, std::memcmp(x.adam_v.data(), y.adam_v.data(), x.adam_v.size() * 4));
  EXPECT_EQ(x.adam_steps, y.adam_steps);
  EXPECT_EQ(x.step, y.step);
}

TEST(PretrainInit, TwoStepsEqualResumingAStepZeroCheckpointWithZeroedMoments) {
  test::TempDir dir;
  const fs::path source = source_checkpoint(dir.path());
  ASSERT_TRUE(fs::exists(source));
  const fs::path cfg = write_config(dir.path() / "run.toml", true);
  const std::string run = test::ferry_binary() + " pretrain --config " + cfg.string();

  // The same start written as a checkpoint to resume: the source's weights, step 0, zeroed
  // moments, the training stream at its first batch, the seed's sampler state.
  Checkpoint start = read_checkpoint(source);
  ASSERT_FALSE(start.adam_m.empty());
  start.step = 0;
  start.adam_steps = 0;
  std::fill(start.adam_m.begin(), start.adam_m.end(), 0.0f);
  std::fill(start.adam_v.begin(), start.adam_v.end(), 0.0f);
  {
    const RunConfig c = load_run_config(cfg);
    const DataSources fresh = make_data_sources(c);
    start.state["data"] = {{"train", fresh.train->position()}, {"val", fresh.val->position()}};
    start.state["initial_val_loss"] = nullptr;
  }
  const fs::path start_file = dir.path() / "start.ckpt";
  write_checkpoint(start_file, start);

  const fs::path init = dir.path() / "init", resumed = dir.path() / "resumed", scratch = dir.path() / "scratch";
  const std::string common = " --seed 7 --max-steps 2";
  const auto a = test::run_command(run + common + " --init " + source.string() + " --out " + init.string());
  ASSERT_EQ(a.exit_code, 0) << a.out;
  EXPECT_NE(a.out.find("starting from the weights of"), std::string::npos) << a.out;
  const auto b = test::run_command(run + common + " --resume " + start_file.string() + " --out " + resumed.string());
  ASSERT_EQ(b.exit_code, 0) << b.out;
  EXPECT_NE(b.out.find("resuming from"), std::string::npos) << b.out;

  const auto m = deterministic_metrics(init / "metrics.jsonl");
  ASSERT_EQ(m.size(), 3u);  // step 0 (validation of the loaded weights), steps 1 and 2
  EXPECT_EQ(deterministic_metrics(resumed / "metrics.jsonl"), m);
  EXPECT_FALSE(sample_lines(a.out).empty()) << a.out;
  EXPECT_EQ(sample_lines(b.out), sample_lines(a.out));
  expect_same_final_state(init / "checkpoints" / "step_00000002.ckpt", resumed / "checkpoints" / "step_00000002.ckpt");
  EXPECT_EQ(read_checkpoint(init / "checkpoints" / "step_00000002.ckpt").state.at("init"), source.string());

  // And the weights did come from the file: a run from the seed's own initialization differs.
  const auto s = test::run_command(run + common + " --out " + scratch.string());
  ASSERT_EQ(s.exit_code, 0) << s.out;
  EXPECT_NE(deterministic_metrics(scratch / "metrics.jsonl")[0], m[0]);
}

// Without a [model] table the architecture comes from the file; llm.c's file and safetensors hold
// the same fp32 weights as the checkpoint, so all three start the same run. A run begun that way
// resumes (--resume auto) with the same model-less config: the checkpoint supplies the architecture.
TEST(PretrainInit, LlmcSafetensorsAndCheckpointStartTheSameRunWithTheFilesArchitecture) {
  test::TempDir dir;
  const fs::path source = source_checkpoint(dir.path());
  ASSERT_TRUE(fs::exists(source));
  const fs::path cfg = write_config(dir.path() / "no_model.toml", false);
  const std::string run = test::ferry_binary() + " pretrain --config " + cfg.string() + " --seed 7";
  std::vector<std::vector<std::string>> metrics;
  for (const char* ext : {".bin", ".safetensors"}) {
    const fs::path file = dir.path() / (std::string("model") + ext);
    const auto c = test::run_command(test::ferry_binary() + " convert " + source.string() + " " + file.string());
    ASSERT_EQ(c.exit_code, 0) << c.out;
  }
  for (const char* init : {"source/checkpoints/step_00000003.ckpt", "model.bin", "model.safetensors", "source"}) {
    SCOPED_TRACE(init);
    const fs::path out = dir.path() / ("run_" + std::to_string(metrics.size()));
    const auto r = test::run_command(run + " --max-steps 2 --init " + (dir.path() / init).string() + " --out " + out.string());
    ASSERT_EQ(r.exit_code, 0) << r.out;
    metrics.push_back(deterministic_metrics(out / "metrics.jsonl"));
    EXPECT_EQ(model_difference(read_checkpoint(out / "checkpoints" / "step_00000002.ckpt").model,
                               read_checkpoint(source).model),
              "");
  }
  for (size_t k = 1; k < metrics.size(); ++k) EXPECT_EQ(metrics[k], metrics[0]) << k;

  const fs::path out = dir.path() / "run_0";
  const auto r = test::run_command(run + " --max-steps 3 --resume auto --out " + out.string());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("resuming from"), std::string::npos) << r.out;
  EXPECT_EQ(deterministic_metrics(out / "metrics.jsonl").size(), 4u);
}

struct BadInit {
  const char* name;
  std::string args;  // after `ferry pretrain --config <model-nano config>`
  std::vector<std::string> must_say;
};

TEST(PretrainInit, BadInputsExitTwoWithOneLine) {
  test::TempDir dir;
  const fs::path source = source_checkpoint(dir.path());
  ASSERT_TRUE(fs::exists(source));
  const fs::path cfg = write_config(dir.path() / "run.toml", true);
  const fs::path micro = dir.path() / "micro.toml";
  std::ofstream(micro) << "[model]\npreset = \"micro\"\n" << kTrain;
  // A truncated llm.c file and a fine-tuned classifier.
  const fs::path llmc = dir.path() / "model.bin";
  ASSERT_EQ(test::run_command(test::ferry_binary() + " convert " + source.string() + " " + llmc.string()).exit_code, 0);
  std::vector<char> bytes = test::file_bytes(llmc);
  bytes.resize(bytes.size() - 100);
  test::write_bytes(dir.path() / "cut.bin", bytes);
  tasks::TaskModel cls;
  cls.meta.config = read_checkpoint(source).model;
  cls.meta.task = "sentiment";
  cls.meta.seq_len = 16;
  cls.meta.head = tasks::head_for_task("sentiment", cls.meta.config, "", {});
  save_model_file(dir.path() / "cls.ckpt", cls.meta.config, cls.meta.to_json(), cls.graph(false, 0).graph,
                  cls.initial_parameters(1, "", nullptr));

  const std::vector<BadInit> cases = {
      {"config_disagrees", "--config " + micro.string() + " --init " + source.string(),
       {"micro.toml: [model] disagrees with --init", "model.n_head: 4 vs 2"}},
      {"init_and_resume", "--config " + cfg.string() + " --init " + source.string() + " --resume",
       {"--init and --resume cannot be combined"}},
      {"init_and_resume_file", "--config " + cfg.string() + " --init " + source.string() + " --resume " + source.string(),
       {"--init and --resume cannot be combined"}},
      {"not_a_model", "--config " + cfg.string() + " --init " + cfg.string(),
       {"run.toml: neither a ferry checkpoint, an llm.c model file nor safetensors"}},
      {"truncated_llmc", "--config " + cfg.string() + " --init " + (dir.path() / "cut.bin").string(),
       {"cut.bin", "bytes, but its header describes"}},
      {"missing", "--config " + cfg.string() + " --init " + (dir.path() / "nope.bin").string(), {"nope.bin", "cannot be read"}},
      {"classifier", "--config " + cfg.string() + " --init " + (dir.path() / "cls.ckpt").string(),
       {"cls.ckpt: a sentiment model", "not a language model"}},
  };
  for (const BadInit& c : cases) {
    SCOPED_TRACE(c.name);
    const fs::path out = dir.path() / (std::string("out_") + c.name);
    const auto r = test::run_command(test::ferry_binary() + " pretrain " + c.args + " --out " + out.string());
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
    EXPECT_EQ(r.out.rfind("ferry: error: ", 0), 0u) << r.out;
    for (const std::string& s : c.must_say) EXPECT_NE(r.out.find(s), std::string::npos) << "'" << s << "' not in: " << r.out;
    EXPECT_FALSE(fs::exists(out / "metrics.jsonl"));
  }
}

}  // namespace
}  // namespace ferry
