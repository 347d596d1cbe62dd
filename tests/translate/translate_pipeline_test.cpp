// tests/translate/translate_pipeline_test.cpp — the translation pipeline end to end at a tiny size:
// 240 Genesis pairs (tests/translate/fixtures, from `ferry data prepare --task translate`),
// `ferry finetune --task translate` from scratch for a few steps, BLEU on held-out Haggai verses
// in eval.json, `ferry eval` on dev, and `ferry translate` on stdin.
#include <algorithm>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/support.h"
#include "tools/tokenizer/gpt2_tokenizer.h"

namespace ferry {
namespace {

TEST(TranslatePipeline, FinetuneEvalTranslateOnATinyModel) {
  if (!std::filesystem::exists(tokenizer::Gpt2Tokenizer::default_dir() / "vocab.bpe"))
    GTEST_SKIP() << "GPT-2 vocabulary not fetched (scripts/fetch_assets.sh)";
  test::TempDir dir;
  const std::string env =
      "OMP_NUM_THREADS=2 FERRY_TRANSLATE_DATA=" + (test::source_dir() / "tests/translate/fixtures").string() + " ";
  const std::string out = (dir.path() / "mt").string();
  auto r = test::run_command(env + test::ferry_binary() +
                             " finetune --task translate --from-scratch --model micro --vocab-size 512 --steps 12"
                             " --batch-size 8 --seq-len 48 --lr 3e-3 --warmup 2 --eval-every 0 --test-limit 12"
                             " --out " + out);
  if (r.exit_code == 2 && r.out.find("unknown task 'translate'") != std::string::npos)
    GTEST_SKIP() << "ferry finetune does not dispatch --task translate yet (tools/tasks hook)";
  ASSERT_EQ(r.exit_code, 0) << r.out;
  nlohmann::json j;
  std::ifstream(dir.path() / "mt" / "eval.json") >> j;
  EXPECT_EQ(j["task"], "translate");
  EXPECT_EQ(j["metric"], "bleu");
  EXPECT_EQ(j["split"], "test");
  EXPECT_EQ(j["examples"], 12);
  EXPECT_EQ(j["n_train_labels"], 240);
  EXPECT_EQ(j["books"], nlohmann::json::array({"Haggai"}));
  const double bleu = j["value"].get<double>();
  EXPECT_GE(bleu, 0.0);
  EXPECT_LE(bleu, 100.0);
  EXPECT_GT(j["bleu"]["ref_len"].get<int>(), 100);  // the Spanish references, 13a tokens
  EXPECT_GE(j["bleu"]["sys_len"].get<int>(), 0);    // 12 steps may still stop at once (eos first)
  // One prediction line per verse: ref, English, Spanish reference, hypothesis.
  std::ifstream pred(dir.path() / "mt" / "predictions.tsv");
  int lines = 0;
  for (std::string line; std::getline(pred, line); ++lines)
    EXPECT_EQ(std::count(line.begin(), line.end(), '\t'), 3) << line;
  EXPECT_EQ(lines, 12);

  // The model file the run wrote (its name depends on the finetune command's format).
  std::string model;
  for (const auto& e : std::filesystem::directory_iterator(dir.path() / "mt"))
    if (e.path().filename().string().rfind("model", 0) == 0) model = e.path().string();
  ASSERT_FALSE(model.empty());
  r = test::run_command(env + test::ferry_binary() + " eval " + model + " --split dev --limit 6 --out " + out + "/dev");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("BLEU = "), std::string::npos) << r.out;
  r = test::run_command("printf 'In the beginning.\\nGod said.\\n' | " + env + test::ferry_binary() +
                        " translate --beam 2 --max-tokens 8 --checkpoint " + model);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = test::run_command(test::ferry_binary() + " translate --beam 0 --checkpoint " + model + " < /dev/null");
  EXPECT_EQ(r.exit_code, 2) << r.out;
}

}  // namespace
}  // namespace ferry
