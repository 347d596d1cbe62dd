// tests/finetune/finetune_model_test.cpp — task models behave as promised: padding never changes a
// prediction, LoRA merged into the weights computes the same function, techniques set trainability
// and learning-rate scales, model folders round-trip by name, and the commands run end to end on a
// small NER fixture (finetune → eval → predict).
#include <gtest/gtest.h>

#include <fstream>

#include "engine/backend.h"
#include "engine/error.h"
#include "engine/finetune/inference.h"
#include "engine/finetune/model_file.h"
#include "engine/finetune/techniques.h"
#include "engine/model/heads.h"
#include "tests/support/support.h"
#include "tools/tasks/batches.h"
#include "tools/tokenizer/gpt2_tokenizer.h"

#include <nlohmann/json.hpp>

namespace ferry {
namespace {

std::vector<float> random_params(const Graph& g, const GptConfig& c, uint64_t seed) {
  std::vector<double> init;
  init_gpt_params(g, c, seed, init);
  std::mt19937_64 rng(seed);
  std::vector<float> flat(init.begin(), init.end());
  for (auto& x : flat) x += 0.05f * static_cast<float>(std::uniform_real_distribution<double>(-1, 1)(rng));
  return flat;
}

std::vector<float> classify(const GptConfig& c, int B, int T, const std::vector<float>& params,
                            const std::vector<tasks::Example>& rows, Backend& backend, int lora_rank = 0) {
  TrunkOptions o;
  o.batch = B;
  o.seq_len = T;
  o.lora.rank = lora_rank;
  TaskGraph g = build_task_graph(c, {"s", HeadKind::SequenceClassification, 2, default_pooling(c)}, o);
  const tasks::GraphInputs in = tasks::GraphInputs::of(g);
  const int logits = g.logits;
  Inference inf(std::move(g.graph), logits, backend);
  inf.set_parameters(params);
  std::vector<const tasks::Example*> ptr;
  for (const auto& r : rows) ptr.push_back(&r);
  return inf.logits(tasks::make_batch(in, HeadKind::SequenceClassification, ptr, B, T, 0));
}

class PaddingInvariance : public ::testing::TestWithParam<const char*> {};

TEST_P(PaddingInvariance, PaddingNeverChangesAPrediction) {
  // One review alone in a tight batch, and the same review padded to 3× the length beside others.
  GptConfig c = model_preset(GetParam());
  c.vocab_size = 50;
  auto backend = make_backend("cpu");
  TrunkOptions o;
  o.batch = 3;
  o.seq_len = 24;
  TaskGraph big = build_task_graph(c, {"s", HeadKind::SequenceClassification, 2, default_pooling(c)}, o);
  const auto params = random_params(big.graph, c, 5);
  tasks::Example x{{4, 8, 15, 16, 23, 42 % 50, 7, 9}, 1, {}};
  tasks::Example y{{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}, 0, {}};
  tasks::Example z{{30, 31}, 0, {}};
  const auto alone = classify(c, 1, 8, params, {x}, *backend);
  const auto padded = classify(c, 3, 24, params, {y, x, z}, *backend);
  ASSERT_EQ(alone.size(), 2u);
  EXPECT_NEAR(alone[0], padded[2], 1e-5);
  EXPECT_NEAR(alone[1], padded[3], 1e-5);
  // And the padding's own token ids do not matter either (pad 0 vs anything): covered by changing z.
  tasks::Example z2{{30, 31}, 0, {}};
  const auto again = classify(c, 3, 24, params, {y, x, z2}, *backend);
  EXPECT_EQ(padded, again);
}

INSTANTIATE_TEST_SUITE_P(Models, PaddingInvariance, ::testing::Values("micro", "encoder-mini"));

TEST(Lora, MergedWeightsComputeTheSameFunction) {
  GptConfig c = model_preset("encoder-mini");
  c.vocab_size = 40;
  auto backend = make_backend("cpu");
  TrunkOptions o;
  o.batch = 2;
  o.seq_len = 6;
  o.lora = {4, 16.0f};  // classify() builds with the default alpha, 16
  TaskGraph with = build_task_graph(c, {"s", HeadKind::SequenceClassification, 2, Pooling::Mean}, o);
  auto params = random_params(with.graph, c, 9);  // LoRA B non-zero: the adapters change the function
  o.lora.rank = 0;
  TaskGraph without = build_task_graph(c, {"s", HeadKind::SequenceClassification, 2, Pooling::Mean}, o);
  std::vector<float> merged = params;
  merge_lora(with.graph, {4, 16.0f}, merged);
  std::vector<float> plain(static_cast<size_t>(without.graph.param_count()));
  std::vector<float> unmerged(plain.size());
  for (const ParamInfo& p : without.graph.params) {
    const ParamInfo& s = with.graph.params[with.graph.param_index(p.name)];
    std::copy_n(merged.begin() + s.offset, p.numel, plain.begin() + p.offset);
    std::copy_n(params.begin() + s.offset, p.numel, unmerged.begin() + p.offset);
  }
  std::vector<tasks::Example> rows = {{{1, 2, 3, 4}, 0, {}}, {{5, 6, 7, 8, 9, 10}, 1, {}}};
  const auto a = classify(c, 2, 6, params, rows, *backend, 4);
  const auto b = classify(c, 2, 6, plain, rows, *backend, 0);
  const auto no_adapters = classify(c, 2, 6, unmerged, rows, *backend, 0);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-4);
  double diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff += std::abs(a[i] - no_adapters[i]);
  EXPECT_GT(diff, 1e-3);  // the adapters did matter
}

TEST(Techniques, TrainabilityAndLearningRates) {
  GptConfig c = model_preset("micro");
  TrunkOptions o;
  o.lora.rank = 2;
  auto build = [&](int rank) {
    o.lora.rank = rank;
    return build_task_graph(c, {"s", HeadKind::SequenceClassification, 2, Pooling::Last}, o);
  };
  auto trainable = [](const Graph& g, const std::string& n) { return g.params[g.param_index(n)].trainable; };
  {
    TaskGraph t = build(0);
    apply_techniques(t.graph, c, {"trunk", 1.0f, {}, 0});
    EXPECT_FALSE(trainable(t.graph, "wte"));
    EXPECT_FALSE(trainable(t.graph, "h.1.attn.qkv.weight"));
    EXPECT_TRUE(trainable(t.graph, "head.s.weight"));
  }
  {
    TaskGraph t = build(0);
    apply_techniques(t.graph, c, {"lower:1", 0.5f, {}, 0});
    EXPECT_FALSE(trainable(t.graph, "wpe"));
    EXPECT_FALSE(trainable(t.graph, "h.0.mlp.fc.weight"));
    EXPECT_TRUE(trainable(t.graph, "h.1.mlp.fc.weight"));
    EXPECT_FLOAT_EQ(t.graph.params[t.graph.param_index("h.1.mlp.fc.weight")].lr_scale, 1.0f);
    EXPECT_FLOAT_EQ(t.graph.params[t.graph.param_index("h.0.mlp.fc.weight")].lr_scale, 0.5f);
    EXPECT_FLOAT_EQ(t.graph.params[t.graph.param_index("wte")].lr_scale, 0.25f);
  }
  {
    TaskGraph t = build(2);
    apply_techniques(t.graph, c, {"none", 1.0f, {2, 16.0f}, 0});
    EXPECT_FALSE(trainable(t.graph, "h.0.attn.qkv.weight"));
    EXPECT_TRUE(trainable(t.graph, "h.0.attn.qkv.lora_a"));
    EXPECT_TRUE(trainable(t.graph, "head.s.bias"));
  }
  {
    TaskGraph t = build(0);
    apply_techniques(t.graph, c, {}, 1);  // gradual unfreezing, first stage: the top block only
    EXPECT_FALSE(trainable(t.graph, "h.0.ln_1.weight"));
    EXPECT_TRUE(trainable(t.graph, "h.1.ln_1.weight"));
    EXPECT_FALSE(trainable(t.graph, "wte"));
  }
  EXPECT_THROW(validate_techniques({"lower:x", 1.0f, {}, 0}, c), UserError);
  EXPECT_THROW(validate_techniques({"none", 0.0f, {}, 0}, c), UserError);
}

TEST(ModelFile, RoundTripsByName) {
  test::TempDir dir;
  GptConfig c = model_preset("encoder-nano");
  TrunkOptions o;
  TaskGraph lm = build_task_graph(c, {"lm", HeadKind::LanguageModel, c.vocab_size, Pooling::Mean}, o);
  const auto params = random_params(lm.graph, c, 2);
  save_model_file(dir.path() / "m", {{"hello", 1}}, lm.graph, params);
  const ModelFile f = load_model_file(dir.path() / "m");
  EXPECT_EQ(f.meta["hello"], 1);
  // Into a classifier graph: every trunk parameter loads, the head does not exist in the file.
  TaskGraph cls = build_task_graph(c, {"s", HeadKind::SequenceClassification, 2, Pooling::Mean}, o);
  std::vector<float> flat(static_cast<size_t>(cls.graph.param_count()), -7.0f);
  EXPECT_EQ(load_params_by_name(f, cls.graph, flat), static_cast<int>(lm.graph.params.size()));
  const ParamInfo& w = cls.graph.params[cls.graph.param_index("h.0.mlp.fc.weight")];
  const ParamInfo& src = lm.graph.params[lm.graph.param_index("h.0.mlp.fc.weight")];
  EXPECT_EQ(flat[w.offset + 3], params[src.offset + 3]);
  EXPECT_EQ(flat[cls.graph.params[cls.graph.param_index("head.s.weight")].offset], -7.0f);
  std::ofstream(dir.path() / "m" / "params.bin", std::ios::trunc) << "x";
  EXPECT_THROW(load_model_file(dir.path() / "m"), UserError);
}

TEST(Commands, NerFinetuneEvalPredictEndToEnd) {
  if (!std::filesystem::exists(tokenizer::Gpt2Tokenizer::default_dir() / "vocab.bpe"))
    GTEST_SKIP() << "GPT-2 vocabulary not fetched (scripts/fetch_assets.sh)";
  test::TempDir dir;
  const std::string env = "FERRY_NER_DIR=" + (test::source_dir() / "tests/finetune/fixtures/ner").string() + " ";
  const std::string out = (dir.path() / "ner").string();
  auto r = test::run_command(env + test::ferry_binary() +
                             " finetune --task ner --from-scratch --model encoder-nano --vocab-size 64 --steps 80"
                             " --batch-size 8 --seq-len 16 --lr 2e-2 --warmup 5 --eval-every 40 --patience 2 --out " +
                             out);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::ifstream js(dir.path() / "ner" / "eval.json");
  nlohmann::json j;
  js >> j;
  EXPECT_EQ(j["task"], "ner");
  EXPECT_EQ(j["metric"], "entity_f1");
  EXPECT_EQ(j["split"], "test");
  EXPECT_EQ(j["init"], "scratch");
  EXPECT_EQ(j["n_train_labels"], 40);
  EXPECT_GT(j["value"].get<double>(), 0.9) << r.out;  // the fixture's entities are trivially learnable
  EXPECT_TRUE(j["per_type"].contains("person"));

  r = test::run_command(env + test::ferry_binary() + " eval " + out + "/model --split dev --out " + out + "/dev");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("entity F1"), std::string::npos) << r.out;
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "ner" / "dev" / "dev_predictions.tsv"));

  r = test::run_command("echo 'I met Bob Smith in Rome today' | " + test::ferry_binary() + " predict " + out + "/model");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("[person Bob Smith]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[location Rome]"), std::string::npos) << r.out;

  r = test::run_command(test::ferry_binary() + " eval " + out + "/nowhere");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  r = test::run_command(env + test::ferry_binary() + " finetune --task ner --out " + out + "/x");
  EXPECT_EQ(r.exit_code, 2) << r.out;
}

}  // namespace
}  // namespace ferry
