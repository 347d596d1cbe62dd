// tests/finetune/release_model_test.cpp — the release model the repository ships
// (models/ferry-release.ckpt, made by scripts/pretrain_release.sh) is the file its manifest
// describes, and `ferry eval --task lm` on its held-out shard reproduces the held-out loss the
// manifest records, with the manifest's own command. It ships as issue 17 asks: bf16 parameters, at
// most 25 MB, pretrained from the config file in the repository as it is.
#include <filesystem>
#include <fstream>
#include <regex>

#include <nlohmann/json.hpp>

#include "engine/checkpoint/checkpoint.h"
#include "engine/finetune/model_file.h"
#include "tests/support/support.h"

namespace ferry::test {
namespace {

nlohmann::json manifest() {
  const auto path = source_dir() / "models" / "ferry-release.json";
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path << " is missing (scripts/pretrain_release.sh --install writes it)";
  nlohmann::json j;
  if (in) in >> j;
  return j;
}

std::string sha256_of(const std::filesystem::path& file) {
  const CommandResult r = run_command("sha256sum '" + file.string() + "'");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  return r.out.substr(0, r.out.find(' '));
}

TEST(ReleaseModel, FilesMatchTheirManifestHashes) {
  const nlohmann::json m = manifest();
  ASSERT_TRUE(m.is_object());
  const auto models = source_dir() / "models";
  const auto ckpt = models / m["model"]["file"].get<std::string>();
  EXPECT_EQ(sha256_of(ckpt), m["model"]["sha256"].get<std::string>()) << ckpt;
  EXPECT_EQ(sha256_of(models / m["heldout"]["file"].get<std::string>()), m["heldout"]["sha256"].get<std::string>());
  // It loads as a model (version, checksum, parameter table) with the manifest's parameter count.
  const ModelFile f = load_model_file(ckpt);
  EXPECT_EQ(f.data.size(), m["model"]["parameters"].get<size_t>());
  EXPECT_FALSE(f.pretraining()) << "a ferry finetune model: it carries its compact vocabulary";
}

TEST(ReleaseModel, ShipsBf16ParametersUnder25MbFromTheConfigAsItIs) {
  const nlohmann::json m = manifest();
  ASSERT_TRUE(m.is_object());
  const auto ckpt = source_dir() / "models" / m["model"]["file"].get<std::string>();
  EXPECT_EQ(m["model"].value("dtype", ""), "bf16");
  EXPECT_EQ(read_checkpoint(ckpt).param_dtype, ParamDtype::BF16) << ckpt;
  EXPECT_LE(std::filesystem::file_size(ckpt), 25u * 1000 * 1000) << ckpt;
  EXPECT_EQ(std::filesystem::file_size(ckpt), m["model"]["bytes"].get<uint64_t>());
  // The config the manifest names is the one in the tree, unchanged since the model was trained
  // (a change to it means the shipped model no longer comes from it: rerun pretrain_release.sh).
  const auto config = source_dir() / m["training"]["config_file"].get<std::string>();
  EXPECT_EQ(sha256_of(config), m["training"]["config_sha256"].get<std::string>()) << config;
}

TEST(ReleaseModel, EvalReproducesTheHeldOutLoss) {
  const nlohmann::json m = manifest();
  ASSERT_TRUE(m.is_object());
  std::string cmd = m["heldout"]["eval_command"].get<std::string>();
  ASSERT_EQ(cmd.rfind("ferry ", 0), 0u) << cmd;
  // The manifest's command, run from the source tree with the ferry built beside the tests.
  cmd = "cd '" + source_dir().string() + "' && OMP_NUM_THREADS=2 " + ferry_binary() + cmd.substr(5) + " 2>/dev/null";
  const CommandResult r = run_command(cmd);
  ASSERT_EQ(r.exit_code, 0) << cmd << "\n" << r.out;
  std::smatch loss;
  ASSERT_TRUE(std::regex_search(r.out, loss, std::regex("\"loss\":([0-9.eE+-]+)"))) << r.out;
  const double expected = m["heldout"]["eval_loss"].get<double>();
  // The same bits on the machine kind that made it; the CPU kernels build with -march=native, so
  // another CPU family may round differently in the last places.
  EXPECT_NEAR(std::stod(loss[1]), expected, 1e-5 * expected) << cmd;
}

}  // namespace
}  // namespace ferry::test
