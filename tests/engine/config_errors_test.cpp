// tests/engine/config_errors_test.cpp — bad configurations end `ferry pretrain` with exit status 2
// and one line naming the field, before any training starts.
#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/support.h"

namespace ferry {
namespace {

struct BadConfig {
  const char* name;
  const char* toml;         // appended to a valid base
  const char* must_name;    // the field or file the message must name
};

const char* kBase = "[model]\npreset = \"micro\"\n";

class ConfigErrors : public ::testing::TestWithParam<BadConfig> {};

TEST_P(ConfigErrors, OneLineNamingTheFieldAndExitTwo) {
  const BadConfig& bc = GetParam();
  test::TempDir dir;
  const auto file = dir.path() / "bad.toml";
  std::ofstream(file) << bc.toml;
  const auto r = test::run_command(test::ferry_binary() + " pretrain --config " + file.string() + " --out " +
                                   (dir.path() / "out").string());
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find(bc.must_name), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_NE(r.out.find("error"), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "out" / "metrics.jsonl"));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ConfigErrors,
    ::testing::Values(
        BadConfig{"unknown_key", "[model]\npreset = \"micro\"\n[train]\nlearning_rate = 0.1\n", "train.learning_rate"},
        BadConfig{"unknown_section", "[optimizer]\nlr = 1\n", "optimizer"},
        BadConfig{"heads_do_not_divide", "[model]\npreset = \"micro\"\nn_embd = 66\nn_head = 4\n", "model.n_embd"},
        BadConfig{"seq_len_over_max", "[model]\npreset = \"micro\"\n[train]\nseq_len = 4096\n", "train.seq_len"},
        BadConfig{"zero_layers", "[model]\npreset = \"micro\"\nn_layer = 0\n", "model.n_layer"},
        BadConfig{"negative_batch", "[model]\npreset = \"micro\"\n[train]\nbatch_size = -3\n", "train.batch_size"},
        BadConfig{"zero_steps", "[model]\npreset = \"micro\"\n[train]\nmax_steps = 0\n", "train.max_steps"},
        BadConfig{"wrong_type", "[model]\npreset = \"micro\"\n[train]\nlr = \"fast\"\n", "train.lr"},
        BadConfig{"unknown_preset", "[model]\npreset = \"gpt5\"\n", "model.preset"},
        BadConfig{"syntax", "[model\npreset = \"micro\"\n", "bad.toml"},
        BadConfig{"missing_data_path", "[model]\npreset = \"micro\"\n[data]\nsource = \"text\"\n", "data.path"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(ConfigErrors, MissingFileIsNamed) {
  const auto r = test::run_command(test::ferry_binary() + " pretrain --config /nonexistent/run.toml");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("/nonexistent/run.toml"), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
}

TEST(ConfigErrors, BadFlagValueExitsTwo) {
  const auto r = test::run_command(test::ferry_binary() + " pretrain --config " +
                                   (test::source_dir() / "configs/tiny.toml").string() + " --max-steps lots");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("--max-steps"), std::string::npos) << r.out;
}

// A rate multiplier outside [0, 10] (negative, or a typo such as 100) is refused before any data is read.
TEST(ConfigErrors, GeneratorRateScaleOutOfRangeExitsTwo) {
  for (const char* value : {"-1", "100"}) {
    const auto r = test::run_command(test::ferry_binary() + " finetune --task rtd --generator-lr-scale " + value);
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_NE(r.out.find("--generator-lr-scale"), std::string::npos) << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  }
}

// Below tools/ an error names the setting ("tp 8: ..."); the command line shows the flag the user
// typed (base/setting_error.h, tools/cli/main.cpp).
TEST(ConfigErrors, ASettingsErrorIsShownAsTheFlagOfTheCommand) {
  const auto r = test::run_command(test::ferry_binary() + " plan --model gpt2-1558m --tp 8 --pp 2 --dp 4 --nodes 8");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("ferry: error: --tp 8: model.n_head (25) must be divisible by it\n"), std::string::npos) << r.out;
}

TEST(ConfigErrors, HelpListsEverySubcommand) {
  const auto r = test::run_command(test::ferry_binary() + " --help");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("pretrain"), std::string::npos) << r.out;
  const auto sub = test::run_command(test::ferry_binary() + " pretrain --help");
  EXPECT_EQ(sub.exit_code, 0);
  for (const char* flag : {"--config", "--max-steps", "--batch-size", "--seq-len", "--out", "--seed"})
    EXPECT_NE(sub.out.find(flag), std::string::npos) << flag;
}

}  // namespace
}  // namespace ferry
