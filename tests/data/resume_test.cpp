// tests/data/resume_test.cpp — a run killed with SIGKILL right after a checkpoint and resumed writes
// the same metrics, bit for bit, as the run that was never interrupted (only the timing fields
// differ), and ends with the same parameters and optimizer state.
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "engine/checkpoint/checkpoint.h"
#include "tests/support/support.h"

namespace ferry {
namespace {

namespace fs = std::filesystem;

using test::deterministic_metrics;

void write_config(const fs::path& file) {
  std::ofstream(file) << R"([model]
preset = "nano"
vocab_size = 256
n_layer = 2

[train]
batch_size = 2
seq_len = 16
max_steps = 10
warmup_steps = 2
lr = 3e-3
eval_every = 3
eval_batches = 2
log_every = 5
checkpoint_every = 4
keep_checkpoints = 2
sample_every = 5
sample_tokens = 6

[data]
source = "synthetic"
)";
}

TEST(Resume, KilledAfterACheckpointAndResumedIsBitExact) {
  test::TempDir dir;
  const fs::path cfg = dir.path() / "run.toml";
  write_config(cfg);
  const std::string ferry = test::ferry_binary() + " pretrain --config " + cfg.string();
  const fs::path whole = dir.path() / "whole", broken = dir.path() / "broken";

  const auto a = test::run_command(ferry + " --out " + whole.string());
  ASSERT_EQ(a.exit_code, 0) << a.out;

  // Killed right after step 8's checkpoint; steps 9 and 10 never ran.
  const auto k = test::run_command("FERRY_TEST_KILL_AFTER_CHECKPOINT=8 " + ferry + " --out " + broken.string());
  ASSERT_NE(k.exit_code, 0) << k.out;
  EXPECT_EQ(k.out.find("done"), std::string::npos) << k.out;
  ASSERT_TRUE(fs::exists(broken / "checkpoints" / "step_00000008.ckpt"));
  EXPECT_TRUE(fs::exists(broken / "checkpoints" / "step_00000004.ckpt"));
  EXPECT_LT(deterministic_metrics(broken / "metrics.jsonl").size(), deterministic_metrics(whole / "metrics.jsonl").size());

  const auto r = test::run_command(ferry + " --out " + broken.string() + " --resume");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("resuming from"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("step_00000008.ckpt"), std::string::npos) << r.out;

  const auto expected = deterministic_metrics(whole / "metrics.jsonl");
  ASSERT_EQ(expected.size(), 11u);  // step 0 (validation) and steps 1..10
  EXPECT_EQ(deterministic_metrics(broken / "metrics.jsonl"), expected);

  const Checkpoint x = read_checkpoint(whole / "checkpoints" / "step_00000010.ckpt");
  const Checkpoint y = read_checkpoint(broken / "checkpoints" / "step_00000010.ckpt");
  ASSERT_EQ(x.parameters.size(), y.parameters.size());
  EXPECT_EQ(0, std::memcmp(x.parameters.data(), y.parameters.data(), x.parameters.size() * 4));
  EXPECT_EQ(0, std::memcmp(x.adam_m.data(), y.adam_m.data(), x.adam_m.size() * 4));
  EXPECT_EQ(0, std::memcmp(x.adam_v.data(), y.adam_v.data(), x.adam_v.size() * 4));
  EXPECT_EQ(x.state.at("rng"), y.state.at("rng"));
  EXPECT_EQ(x.state.at("data"), y.state.at("data"));
  // keep_checkpoints = 2
  EXPECT_EQ(list_checkpoints(broken / "checkpoints").size(), 2u);

  // The sample printed after the resume is the one the whole run printed (the RNG state resumed).
  auto sample_line = [](const std::string& out) {
    const size_t at = out.find("sample @ step 10");
    return at == std::string::npos ? std::string() : out.substr(at, out.find('\n', at) - at);
  };
  EXPECT_FALSE(sample_line(a.out).empty()) << a.out;
  EXPECT_EQ(sample_line(r.out), sample_line(a.out));
}

TEST(Resume, AutoWithoutCheckpointsStartsFreshAndAMissingFileIsRefused) {
  test::TempDir dir;
  const fs::path cfg = dir.path() / "run.toml";
  write_config(cfg);
  const std::string ferry = test::ferry_binary() + " pretrain --config " + cfg.string() + " --max-steps 2";
  const auto fresh = test::run_command(ferry + " --out " + (dir.path() / "fresh").string() + " --resume auto");
  EXPECT_EQ(fresh.exit_code, 0) << fresh.out;
  EXPECT_EQ(fresh.out.find("resuming"), std::string::npos);
  const auto missing = test::run_command(ferry + " --out " + (dir.path() / "m").string() + " --resume " +
                                         (dir.path() / "nope.ckpt").string());
  EXPECT_EQ(missing.exit_code, 2) << missing.out;
  EXPECT_NE(missing.out.find("nope.ckpt: cannot open the checkpoint"), std::string::npos) << missing.out;
}

}  // namespace
}  // namespace ferry
