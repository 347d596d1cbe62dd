// tests/engine/shipped_configs_test.cpp — every file in configs/ is read with its own schema and is
// current: a run config (`ferry pretrain --config`: [model], [train], [data], [parallel]) parses and
// validates; a fine-tuning config (`ferry finetune --config`, configs/finetune_*.toml and
// configs/pretrain_release.toml, which pretrains through `ferry finetune --task lm`) applies to
// finetune's real options (tools/cli/finetune.cpp, compiled into this test) in the one config
// dialect, snake_case keys, with no key in the old kebab-case spelling. A new file in configs/ must
// be given its schema here. The flag file's old spelling is read with a warning, and a key given in
// both spellings is refused.
#include <filesystem>
#include <fstream>
#include <map>

#include "base/error.h"
#include "engine/toml.h"
#include "engine/train/run_config.h"
#include "tests/support/support.h"
#include "tools/cli/command.h"
#include "tools/config/flag_file.h"

namespace ferry::test {
namespace {

namespace fs = std::filesystem;

enum class Schema { Run, Finetune };

// Every shipped config and the command that reads it.
const std::map<std::string, Schema>& shipped() {
  static const std::map<std::string, Schema> m = {
      {"tiny.toml", Schema::Run},
      {"small.toml", Schema::Run},
      {"interop_check.toml", Schema::Run},
      {"gpt2-124m.toml", Schema::Run},
      {"gpt2-350m.toml", Schema::Run},
      {"gpt2-774m.toml", Schema::Run},
      {"gpt2-1558m.toml", Schema::Run},
      {"finetune_sentiment.toml", Schema::Finetune},
      {"finetune_ner.toml", Schema::Finetune},
      {"finetune_multi.toml", Schema::Finetune},
      {"finetune_pretrain.toml", Schema::Finetune},
      {"pretrain_release.toml", Schema::Finetune},
  };
  return m;
}

// finetune's options, as `ferry finetune` declares them (its callback is never run).
std::unique_ptr<CLI::App> finetune_app() {
  auto app = std::make_unique<CLI::App>();
  for (const auto& c : cli::commands())
    if (c.name == "finetune") c.setup(*app);
  return app;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(ShippedConfigs, EveryFileInConfigsHasASchemaHere) {
  int seen = 0;
  for (const auto& e : fs::directory_iterator(source_dir() / "configs")) {
    if (e.path().extension() != ".toml") continue;
    ++seen;
    EXPECT_TRUE(shipped().count(e.path().filename().string()))
        << e.path() << " is shipped but not read by this test: give it its schema in shipped()";
  }
  EXPECT_EQ(seen, static_cast<int>(shipped().size())) << "a config listed here is no longer in configs/";
}

TEST(ShippedConfigs, RunConfigsParseAndValidate) {
  for (const auto& [name, schema] : shipped()) {
    if (schema != Schema::Run) continue;
    SCOPED_TRACE(name);
    const fs::path path = source_dir() / "configs" / name;
    RunConfig c;
    ASSERT_NO_THROW(c = load_run_config(path));
    // A shard config may leave data.path to the command line (`--data DIR`), as small.toml does.
    if (c.data.source != "synthetic" && c.data.path.empty()) c.data.path = "given-by---data";
    EXPECT_NO_THROW(validate_run_config(c));
  }
}

TEST(ShippedConfigs, FinetuneConfigsApplyInTheOneDialect) {
  ASSERT_NE(finetune_app(), nullptr);
  for (const auto& [name, schema] : shipped()) {
    if (schema != Schema::Finetune) continue;
    SCOPED_TRACE(name);
    const fs::path path = source_dir() / "configs" / name;
    auto app = finetune_app();
    ASSERT_NE(app->get_option_no_throw("--batch-size"), nullptr) << "finetune did not register";
    EXPECT_NO_THROW(config::apply_flag_file(*app, path.string()));
    const toml::table t = parse_toml(read_text(path), path.string());
    for (auto&& [k, v] : t) {
      const std::string key(k.str());
      EXPECT_EQ(key.find('-'), std::string::npos) << key << ": write it in snake_case, " << config::snake_of(key);
      const CLI::Option* opt = app->get_option_no_throw(config::flag_of_key(key));
      ASSERT_NE(opt, nullptr) << key;
      EXPECT_GT(opt->count(), 0u) << key << " did not reach its option";
    }
  }
}

TEST(FlagFile, OldSpellingIsReadWithAWarningAndBothSpellingsAreRefused) {
  TempDir dir;
  const fs::path old_file = dir.path() / "old.toml";
  std::ofstream(old_file) << "batch-size = 8\nseq_len = 32\n";
  auto app = finetune_app();
  testing::internal::CaptureStderr();
  config::apply_flag_file(*app, old_file.string());
  const std::string warned = testing::internal::GetCapturedStderr();
  EXPECT_EQ(app->get_option("--batch-size")->as<int>(), 8);
  EXPECT_EQ(app->get_option("--seq-len")->as<int>(), 32);
  EXPECT_EQ(warned, "ferry: warning: " + old_file.string() +
                        ": key 'batch-size' is the old spelling; write batch_size (the old one is read until the "
                        "next release)\n");

  const fs::path both = dir.path() / "both.toml";
  std::ofstream(both) << "batch_size = 8\nbatch-size = 4\n";
  auto app2 = finetune_app();
  testing::internal::CaptureStderr();
  try {
    config::apply_flag_file(*app2, both.string());
    FAIL() << "both spellings accepted";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("is given twice"), std::string::npos) << e.what();
  }
  testing::internal::GetCapturedStderr();
}

TEST(FlagFile, UnknownKeyNamesTheDialect) {
  TempDir dir;
  const fs::path f = dir.path() / "bad.toml";
  std::ofstream(f) << "batchsize = 8\n";
  auto app = finetune_app();
  try {
    config::apply_flag_file(*app, f.string());
    FAIL() << "unknown key accepted";
  } catch (const UserError& e) {
    EXPECT_EQ(std::string(e.what()),
              f.string() + ": unknown key 'batchsize' (keys are the command's flag names in snake_case, e.g. batch_size)");
  }
}

}  // namespace
}  // namespace ferry::test
