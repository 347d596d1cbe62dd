// tests/data/model_sources_test.cpp — every command that takes a model reads the same files: a
// ferry checkpoint, a `ferry pretrain` run folder, an llm.c model file (fp32 or bf16) and
// safetensors (tools/convert/load_model.h), for eval, pretrain --init, finetune --init and generate.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "engine/assets.h"
#include "engine/checkpoint/checkpoint.h"
#include "engine/random.h"
#include "tests/support/support.h"
#include "tools/convert/load_model.h"
#include "tools/convert/model_file.h"
#include "tools/tasks/model_setup.h"
#include "tools/tokenizer/gpt2_tokenizer.h"

namespace ferry {
namespace {

namespace fs = std::filesystem;

Checkpoint random_model(GptConfig c, uint64_t seed) {
  Checkpoint m;
  m.model = c;
  m.params = gpt_param_table(c);
  m.parameters.resize(m.params.back().offset + m.params.back().numel);
  Rng rng(seed);
  for (float& x : m.parameters) x = float(0.3 * rng.normal());
  return m;
}

const float* param(const ModelFile& m, const std::string& name) {
  const ModelFile::Entry* e = m.find(name);
  EXPECT_NE(e, nullptr) << name;
  return e ? m.data.data() + e->offset : nullptr;
}

TEST(ModelSources, EveryKindOfFileAndFolderGivesTheSameWeights) {
  test::TempDir dir;
  GptConfig c = gpt_preset("nano");
  c.n_layer = 2;
  c.vocab_size = 300;  // llm.c pads it to 384 rows
  const Checkpoint m = random_model(c, test::test_seed());
  write_checkpoint(dir.path() / "model.ckpt", m);
  write_checkpoint(checkpoint_file(dir.path() / "run" / "checkpoints", 4), m);
  write_checkpoint(checkpoint_file(dir.path() / "run" / "checkpoints", 2), random_model(c, 1));  // older
  fs::create_directories(dir.path() / "finetuned");
  write_checkpoint(dir.path() / "finetuned" / "model.ckpt", m);
  convert::write_llmc(dir.path() / "model.bin", m, convert::WeightType::F32);
  convert::write_safetensors(dir.path() / "model.safetensors", m, convert::WeightType::F32);
  for (const char* source : {"model.ckpt", "run", "finetuned", "model.bin", "model.safetensors"}) {
    SCOPED_TRACE(source);
    const ModelFile f = convert::load_any_model_file(dir.path() / source);
    EXPECT_EQ(model_difference(f.config, c), "");
    EXPECT_TRUE(f.pretraining());
    for (const auto& p : m.params)
      EXPECT_EQ(0, std::memcmp(param(f, p.name), m.parameters.data() + p.offset, p.numel * sizeof(float))) << p.name;
  }
  // The run folder is read at its newest checkpoint.
  EXPECT_EQ(convert::load_any_model_file(dir.path() / "run").path.filename(), "step_00000004.ckpt");
}

// finetune --init: a GPT-2-vocabulary llm.c file (fp32, and bf16 read as its rounded values) loads
// every trunk parameter into a task graph by name.
TEST(ModelSources, FinetuneInitLoadsTheTrunkFromLlmcFiles) {
  test::TempDir dir;
  GptConfig c = gpt_preset("nano");
  c.vocab_size = tokenizer::Gpt2Tokenizer::kVocabSize;
  c.max_seq_len = 32;
  const Checkpoint m = random_model(c, test::test_seed());
  for (const auto type : {convert::WeightType::F32, convert::WeightType::BF16}) {
    const fs::path file = dir.path() / (type == convert::WeightType::F32 ? "f32.bin" : "bf16.bin");
    convert::write_llmc(file, m, type);
    tasks::TaskModel t;
    t.meta = tasks::ModelMeta::of(convert::load_any_model_file(file));
    t.meta.task = "sentiment";
    t.meta.head = tasks::head_for_task("sentiment", t.meta.config, "", {});
    t.meta.seq_len = 16;
    int loaded = 0;
    const std::vector<float> flat = t.initial_parameters(3, file.string(), &loaded);
    EXPECT_EQ(loaded, static_cast<int>(m.params.size()));  // every trunk parameter; the head is new
    const TaskGraph g = t.graph(true, 0);
    const ParamInfo& wte = g.graph.params[g.graph.param_index("wte")];
    for (int64_t i = 0; i < wte.numel; i += 997) {
      const float want = type == convert::WeightType::F32 ? m.parameters[i] : convert::from_bf16(convert::to_bf16(m.parameters[i]));
      ASSERT_EQ(flat[wte.offset + i], want) << i;
    }
  }
}

// The whole command on an llm.c file: `ferry finetune --task lm --init model.bin` says it loaded
// every parameter from it.
TEST(ModelSources, FinetuneCommandStartsFromAnLlmcFile) {
  if (!fs::exists(tokenizer::Gpt2Tokenizer::default_dir() / "vocab.bpe") || !fs::exists(assets_dir() / "sotu"))
    GTEST_SKIP() << "GPT-2 vocabulary or the SOTU text not fetched (scripts/fetch_assets.sh)";
  test::TempDir dir;
  GptConfig c = gpt_preset("nano");
  c.vocab_size = tokenizer::Gpt2Tokenizer::kVocabSize;
  c.max_seq_len = 32;
  const Checkpoint m = random_model(c, 5);
  convert::write_llmc(dir.path() / "model.bin", m, convert::WeightType::F32);
  const auto r = test::run_command(test::ferry_binary() + " finetune --task lm --init " +
                                   (dir.path() / "model.bin").string() +
                                   " --steps 1 --batch-size 2 --seq-len 16 --sources sotu --lm-bytes 5000 "
                                   "--eval-every 0 --dev-limit 2 --device cpu --out " +
                                   (dir.path() / "ft").string());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find(std::to_string(m.params.size()) + " loaded from " + (dir.path() / "model.bin").string()),
            std::string::npos)
      << r.out;
}

// generate --checkpoint: a run folder, its checkpoint and the checkpoint's llm.c conversion give the
// same greedy text.
TEST(ModelSources, GenerateTakesARunFolderAndAnLlmcFile) {
  test::TempDir dir;
  GptConfig c = gpt_preset("nano");
  c.vocab_size = 256;  // byte-level: no tokenizer files needed
  c.max_seq_len = 32;
  const Checkpoint m = random_model(c, 11);
  const fs::path ckpt = checkpoint_file(dir.path() / "run" / "checkpoints", 3);
  write_checkpoint(ckpt, m);
  convert::write_llmc(dir.path() / "model.bin", m, convert::WeightType::F32);
  std::vector<std::string> texts;
  for (const fs::path& model : {dir.path() / "run", ckpt, dir.path() / "model.bin"}) {
    const auto r = test::run_command("(" + test::ferry_binary() + " generate --checkpoint " + model.string() +
                                     " --prompt ab --max-tokens 8 --temperature 0 --device cpu 2>/dev/null)");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    texts.push_back(r.out);
  }
  EXPECT_GT(texts[0].size(), 3u);
  EXPECT_EQ(texts[1], texts[0]);
  EXPECT_EQ(texts[2], texts[0]);
}

}  // namespace
}  // namespace ferry
