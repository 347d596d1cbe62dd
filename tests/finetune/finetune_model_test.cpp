// tests/finetune/finetune_model_test.cpp — task models behave as promised: padding never changes a
// prediction, LoRA merged into the weights computes the same function, techniques set trainability
// and learning-rate scales, task models round-trip by name in the checkpoint format (and a
// pretraining checkpoint loads into a task graph), build_gpt is the trunk plus an LM head, and the commands run end to end on a
// small NER fixture (finetune → eval → predict), a bf16 copy of such a model included.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>

#include "engine/backend.h"
#include "engine/checkpoint/checkpoint.h"
#include "base/error.h"
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
  {
    TaskGraph t = build(0);
    apply_techniques(t.graph, c, {"none", 0.5f, {}, 0, 0.1f});  // per-side rates, with the per-block decay
    EXPECT_FLOAT_EQ(t.graph.params[t.graph.param_index("h.1.mlp.fc.weight")].lr_scale, 0.1f);
    EXPECT_FLOAT_EQ(t.graph.params[t.graph.param_index("h.0.mlp.fc.weight")].lr_scale, 0.05f);
    EXPECT_FLOAT_EQ(t.graph.params[t.graph.param_index("wte")].lr_scale, 0.025f);
    EXPECT_FLOAT_EQ(t.graph.params[t.graph.param_index("head.s.weight")].lr_scale, 1.0f);
    EXPECT_TRUE(trainable(t.graph, "wte"));
  }
  EXPECT_THROW(validate_techniques({"lower:x", 1.0f, {}, 0}, c), UserError);
  EXPECT_THROW(validate_techniques({"none", 0.0f, {}, 0}, c), UserError);
  EXPECT_THROW(validate_techniques({"none", 1.0f, {}, 0, 0.0f}, c), UserError);
  EXPECT_THROW(validate_techniques({"none", 1.0f, {}, 0, 1.5f}, c), UserError);
}

TEST(ModelFile, RoundTripsByNameAsACheckpoint) {
  test::TempDir dir;
  GptConfig c = model_preset("encoder-nano");
  TrunkOptions o;
  TaskGraph lm = build_task_graph(c, {"lm", HeadKind::LanguageModel, c.vocab_size, Pooling::Mean}, o);
  const auto params = random_params(lm.graph, c, 2);
  save_model_file(dir.path() / "m" / kTaskModelFile, c, {{"hello", 1}}, lm.graph, params);
  const ModelFile f = load_model_file(dir.path() / "m");  // the folder finds its model.ckpt
  EXPECT_EQ(f.meta["hello"], 1);
  EXPECT_FALSE(f.pretraining());
  EXPECT_EQ(model_difference(f.config, c), "");
  // The one checkpoint format: read_checkpoint reads it too.
  EXPECT_EQ(read_checkpoint(dir.path() / "m" / kTaskModelFile).parameters, params);
  // Into a classifier graph: every trunk parameter loads, the head does not exist in the file.
  TaskGraph cls = build_task_graph(c, {"s", HeadKind::SequenceClassification, 2, Pooling::Mean}, o);
  std::vector<float> flat(static_cast<size_t>(cls.graph.param_count()), -7.0f);
  EXPECT_EQ(load_params_by_name(f, cls.graph, flat), static_cast<int>(lm.graph.params.size()));
  const ParamInfo& w = cls.graph.params[cls.graph.param_index("h.0.mlp.fc.weight")];
  const ParamInfo& src = lm.graph.params[lm.graph.param_index("h.0.mlp.fc.weight")];
  EXPECT_EQ(flat[w.offset + 3], params[src.offset + 3]);
  EXPECT_EQ(flat[cls.graph.params[cls.graph.param_index("head.s.weight")].offset], -7.0f);
  // A wider model's parameters do not fit: a clear error, not a silent partial load.
  GptConfig wide = c;
  wide.n_embd = 32;
  TaskGraph other = build_task_graph(wide, {"s", HeadKind::SequenceClassification, 2, Pooling::Mean}, o);
  std::vector<float> oflat(static_cast<size_t>(other.graph.param_count()));
  EXPECT_THROW(load_params_by_name(f, other.graph, oflat), UserError);
  std::ofstream(dir.path() / "m" / kTaskModelFile, std::ios::trunc) << "x";
  EXPECT_THROW(load_model_file(dir.path() / "m"), UserError);
  EXPECT_THROW(load_model_file(dir.path() / "empty"), UserError);
}

TEST(ModelFile, PretrainingCheckpointLoadsIntoATaskGraph) {
  test::TempDir dir;
  GptConfig c = gpt_preset("nano");
  GptBuildOptions go;
  go.batch = 2;
  go.seq_len = 8;
  const GptGraph gpt = build_gpt(c, go);
  Checkpoint ck;  // as ferry pretrain writes it: the GPT's flat order, with optimizer state
  ck.step = 40;
  ck.model = c;
  ck.params = gpt_param_table(c);
  ck.parameters = random_params(gpt.graph, c, 5);
  ck.adam_m.assign(ck.parameters.size(), 0.0f);
  ck.adam_v.assign(ck.parameters.size(), 0.0f);
  ck.adam_steps = 40;
  std::filesystem::create_directories(dir.path() / "run");
  write_checkpoint(checkpoint_file(dir.path() / "run", 20), ck);
  ck.parameters[0] += 1.0f;
  write_checkpoint(checkpoint_file(dir.path() / "run", 40), ck);
  const ModelFile f = load_model_file(dir.path() / "run");  // the newest of a run's checkpoints
  EXPECT_TRUE(f.pretraining());
  EXPECT_EQ(f.step, 40);
  EXPECT_EQ(f.path.filename(), checkpoint_file(dir.path(), 40).filename());
  // `ferry pretrain --out run2` keeps its checkpoints in run2/checkpoints/: the run folder works too.
  std::filesystem::create_directories(dir.path() / "run2" / "checkpoints");
  write_checkpoint(checkpoint_file(dir.path() / "run2" / "checkpoints", 40), ck);
  EXPECT_EQ(load_model_file(dir.path() / "run2").step, 40);
  TrunkOptions o;
  o.batch = 2;
  o.seq_len = 8;
  TaskGraph ner = build_task_graph(c, {"ner", HeadKind::TokenClassification, 3, Pooling::Mean}, o);
  std::vector<float> flat(static_cast<size_t>(ner.graph.param_count()), -7.0f);
  EXPECT_EQ(load_params_by_name(f, ner.graph, flat), static_cast<int>(gpt.graph.params.size()));
  for (const ParamInfo& p : gpt.graph.params) {
    const ParamInfo& q = ner.graph.params[ner.graph.param_index(p.name)];
    EXPECT_EQ(flat[q.offset], ck.parameters[p.offset]) << p.name;
  }
}

// build_gpt is the trunk plus the tied head: the same parameters in the same order, and the same
// loss as the task graph's language-model head (where the trunk adds its padding-mask input).
TEST(Trunk, BuildGptIsTheTrunkWithAnLmHead) {
  for (const bool tied : {true, false}) {
    GptConfig c = gpt_preset("nano");
    c.tied_head = tied;
    GptBuildOptions go;
    go.batch = 2;
    go.seq_len = 8;
    const GptGraph gpt = build_gpt(c, go);
    TrunkOptions o;
    o.batch = 2;
    o.seq_len = 8;
    const TaskGraph lm = build_task_graph(c, {"lm", HeadKind::LanguageModel, c.vocab_size, Pooling::Mean}, o);
    ASSERT_EQ(gpt.graph.params.size(), lm.graph.params.size());
    for (size_t i = 0; i < gpt.graph.params.size(); ++i) {
      EXPECT_EQ(gpt.graph.params[i].name, lm.graph.params[i].name);
      EXPECT_EQ(gpt.graph.params[i].offset, lm.graph.params[i].offset);
    }
    ASSERT_EQ(gpt.graph.nodes.size(), lm.graph.nodes.size());
    for (size_t i = 0; i < gpt.graph.nodes.size(); ++i) EXPECT_EQ(gpt.graph.nodes[i].op, lm.graph.nodes[i].op);
    // Every parameter before any node: the flat layout does not depend on how nodes interleave.
    for (const ParamInfo& p : gpt.graph.params) EXPECT_LT(p.value, gpt.graph.nodes.front().out[0]);
    EXPECT_EQ(gpt.graph.values[gpt.graph.nodes.front().in[0]].name, "tokens");
    EXPECT_EQ(gpt.targets, 1);  // inputs first: tokens, targets
  }
}

TEST(Commands, NerFinetuneEvalPredictEndToEnd) {
  if (!std::filesystem::exists(tokenizer::Gpt2Tokenizer::default_dir() / "vocab.bpe"))
    GTEST_SKIP() << "GPT-2 vocabulary not fetched (scripts/fetch_assets.sh)";
  test::TempDir dir;
  const std::string env = "FERRY_NER_DIR=" + (test::source_dir() / "tests/finetune/fixtures/ner").string() + " ";
  const std::string out = (dir.path() / "ner").string();
  auto r = test::run_command(env + test::ferry_binary() +
                             " finetune --task ner --from-scratch --model encoder-nano --vocab-kind frequent --vocab-size 64 --steps 80"
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

  // metrics.jsonl: every step's train loss, the dev metric at the evaluated steps (40 and 80 unless
  // stopped early), drawn by `ferry plot`.
  {
    std::ifstream m(dir.path() / "ner" / "metrics.jsonl");
    std::string line;
    std::vector<int> dev_steps;
    int lines = 0;
    while (std::getline(m, line)) {
      const auto e = nlohmann::json::parse(line);
      EXPECT_EQ(e["step"].get<int>(), ++lines);
      EXPECT_TRUE(e["train_loss"].is_number());
      if (e.contains("dev")) {
        dev_steps.push_back(e["step"].get<int>());
        EXPECT_EQ(e["metric"], "entity_f1");
      }
    }
    EXPECT_EQ(lines, j["steps"].get<int>());
    ASSERT_FALSE(dev_steps.empty());
    EXPECT_EQ(dev_steps.front(), 40);
    EXPECT_EQ(dev_steps.back(), j["steps"].get<int>());
  }
  r = test::run_command(test::ferry_binary() + " plot --key dev --y-label 'dev entity F1' --out " + out +
                        "/dev.svg a=" + out + "/metrics.jsonl b=" + out + "/metrics.jsonl");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  {
    std::ifstream svg(dir.path() / "ner" / "dev.svg");
    const std::string text((std::istreambuf_iterator<char>(svg)), std::istreambuf_iterator<char>());
    EXPECT_EQ(text.rfind("<svg", 0), 0u);
    EXPECT_NE(text.find("dev entity F1"), std::string::npos);
    EXPECT_GT(std::count(text.begin(), text.end(), '\n'), 10);
    size_t lines = 0;
    for (size_t p = text.find("<polyline"); p != std::string::npos; p = text.find("<polyline", p + 1)) ++lines;
    EXPECT_EQ(lines, 2u);
  }
  r = test::run_command(test::ferry_binary() + " plot --key nosuchkey --out " + out + "/x.svg a=" + out + "/metrics.jsonl");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("nosuchkey"), std::string::npos) << r.out;
  r = test::run_command(test::ferry_binary() + " plot --out " + out + "/x.svg " + out + "/metrics.jsonl");
  EXPECT_EQ(r.exit_code, 2) << r.out;

  r = test::run_command(env + test::ferry_binary() + " eval " + out + " --split dev --out " + out + "/dev");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("entity F1"), std::string::npos) << r.out;
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "ner" / "dev" / "dev_predictions.tsv"));

  r = test::run_command("echo 'I met Bob Smith in Rome today' | " + test::ferry_binary() + " predict " + out + "/model.ckpt");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("[person Bob Smith]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[location Rome]"), std::string::npos) << r.out;

  // --init takes a pretraining checkpoint (GPT-2's vocabulary, parameters by name) as well.
  GptConfig pc = gpt_preset("nano");
  pc.vocab_size = tokenizer::Gpt2Tokenizer::kVocabSize;
  Checkpoint ck;
  ck.model = pc;
  ck.params = gpt_param_table(pc);
  GptBuildOptions go;
  ck.parameters = random_params(build_gpt(pc, go).graph, pc, 3);
  write_checkpoint(dir.path() / "pre.ckpt", ck);
  r = test::run_command(env + test::ferry_binary() + " finetune --task ner --init " + (dir.path() / "pre.ckpt").string() +
                        " --steps 4 --batch-size 4 --seq-len 16 --eval-every 0 --out " + out + "/fromckpt");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find(str_cat(ck.params.size(), " loaded from ")), std::string::npos) << r.out;
  std::ifstream js2(dir.path() / "ner" / "fromckpt" / "eval.json");
  js2 >> j;
  EXPECT_NE(j["init"].get<std::string>().find("pre.ckpt"), std::string::npos);

  r = test::run_command(test::ferry_binary() + " eval " + out + "/nowhere");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  r = test::run_command(env + test::ferry_binary() + " finetune --task ner --out " + out + "/x");
  EXPECT_EQ(r.exit_code, 2) << r.out;
}

// A fine-tuned model converted to bf16 (`ferry convert --dtype bf16`, as the release model ships)
// keeps its task meta and compact vocabulary, and every command that takes a model reads it:
// finetune --init loads all of its parameters and keeps its vocabulary, predict and eval run on it.
TEST(Commands, Bf16ConvertedTaskModelLoadsInFinetuneInitPredictAndEval) {
  if (!std::filesystem::exists(tokenizer::Gpt2Tokenizer::default_dir() / "vocab.bpe"))
    GTEST_SKIP() << "GPT-2 vocabulary not fetched (scripts/fetch_assets.sh)";
  test::TempDir dir;
  const std::string env = "FERRY_NER_DIR=" + (test::source_dir() / "tests/finetune/fixtures/ner").string() + " ";
  const std::string out = (dir.path() / "ner").string(), half = (dir.path() / "ner_bf16.ckpt").string();
  auto r = test::run_command(env + test::ferry_binary() +
                             " finetune --task ner --from-scratch --model encoder-nano --vocab-kind frequent --vocab-size 64"
                             " --steps 6 --batch-size 8 --seq-len 16 --eval-every 0 --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = test::run_command(test::ferry_binary() + " convert " + out + " " + half + " --dtype bf16");
  ASSERT_EQ(r.exit_code, 0) << r.out;

  const ModelFile f32 = load_model_file(out), bf16 = load_model_file(half);
  EXPECT_EQ(read_checkpoint(half).param_dtype, ParamDtype::BF16);
  EXPECT_FALSE(bf16.pretraining());
  EXPECT_EQ(bf16.meta, f32.meta);
  EXPECT_EQ(model_difference(bf16.config, f32.config), "");
  ASSERT_EQ(bf16.params.size(), f32.params.size());
  ASSERT_EQ(bf16.data.size(), f32.data.size());
  for (size_t i = 0; i < f32.data.size(); ++i) {
    ASSERT_LE(std::abs(bf16.data[i] - f32.data[i]), std::ldexp(std::abs(f32.data[i]), -8)) << i;
    uint32_t bits;
    std::memcpy(&bits, &bf16.data[i], 4);
    ASSERT_EQ(bits & 0xffffu, 0u) << "value " << i << " is not a bf16 value";
  }

  r = test::run_command(env + test::ferry_binary() + " finetune --task ner --init " + half +
                        " --steps 2 --batch-size 8 --seq-len 16 --eval-every 0 --out " + out + "/again");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find(str_cat(bf16.params.size(), " loaded from ")), std::string::npos) << r.out;
  EXPECT_EQ(load_model_file(out + "/again").meta.at("vocab"), f32.meta.at("vocab"));

  r = test::run_command("echo 'I met Bob Smith in Rome today' | " + test::ferry_binary() + " predict " + half);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  r = test::run_command(env + test::ferry_binary() + " eval " + half + " --split dev --out " + out + "/dev_bf16");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("entity F1"), std::string::npos) << r.out;
}

// An assets folder holding GPT-2's vocabulary and a synthetic IMDB file whose labels a small model
// learns at once (one sentiment word per review among neutral ones), large enough for the split.
std::filesystem::path synthetic_assets(const test::TempDir& dir) {
  const auto assets = dir.path() / "assets";
  std::filesystem::create_directories(assets / "imdb");
  std::filesystem::create_directory_symlink(std::filesystem::absolute(tokenizer::Gpt2Tokenizer::default_dir()),
                                            assets / "gpt2");
  const std::vector<std::string> good = {"great", "wonderful", "superb", "brilliant"};
  const std::vector<std::string> bad = {"terrible", "awful", "boring", "dreadful"};
  const std::vector<std::string> filler = {"the", "film", "plot", "actor", "scene", "story", "was", "quite"};
  std::mt19937_64 rng(7);
  nlohmann::json reviews = nlohmann::json::array();
  for (int i = 0; i < 2400; ++i) {
    const int label = i % 2;
    std::string t = "review " + std::to_string(i) + ":";
    for (int w = 0; w < 6; ++w) t += " " + filler[rng() % filler.size()];
    t += " " + (label ? good : bad)[rng() % 4];
    reviews.push_back({{"t", t}, {"s", label}});
  }
  std::ofstream(assets / "imdb" / "reviews.json") << reviews.dump();
  return assets;
}

nlohmann::json read_json(const std::filesystem::path& p) {
  std::ifstream in(p);
  nlohmann::json j;
  in >> j;
  return j;
}

// --task multi from a config file (flags override it): one trunk, a sentiment head and an NER head,
// each task scored and saved on its own; an unknown config key is refused.
TEST(Commands, MultiTaskFromAConfigFile) {
  if (!std::filesystem::exists(tokenizer::Gpt2Tokenizer::default_dir() / "vocab.bpe"))
    GTEST_SKIP() << "GPT-2 vocabulary not fetched (scripts/fetch_assets.sh)";
  test::TempDir dir;
  const auto assets = synthetic_assets(dir);
  const std::string env = "FERRY_ASSETS=" + assets.string() + " FERRY_NER_DIR=" +
                          (test::source_dir() / "tests/finetune/fixtures/ner").string() + " ";
  const std::string out = (dir.path() / "multi").string();
  std::ofstream(dir.path() / "multi.toml") << "task = \"multi\"\ntasks = \"sentiment,ner\"\ntask-weights = \"1,1\"\n"
                                              "from-scratch = true\nmodel = \"encoder-nano\"\nvocab-kind = \"frequent\"\nvocab-size = 128\n"
                                              "steps = 500\nbatch-size = 8\nseq-len = 16\nlr = 2e-2\nwarmup = 5\n"
                                              "eval-every = 30\nlabels = 80\ndev-limit = 40\ntest-limit = 60\n";
  auto r = test::run_command(env + test::ferry_binary() + " finetune --config " + (dir.path() / "multi.toml").string() +
                             " --steps 60 --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const nlohmann::json j = read_json(dir.path() / "multi" / "eval.json");
  EXPECT_EQ(j["task"], "multi");
  EXPECT_EQ(j["steps"], 60);  // the flag, not the file's 500
  const nlohmann::json& s = j["tasks"]["sentiment"];
  const nlohmann::json& n = j["tasks"]["ner"];
  EXPECT_EQ(s["metric"], "accuracy");
  EXPECT_EQ(n["metric"], "entity_f1");
  EXPECT_GT(s["value"].get<double>(), 0.9) << r.out;  // both tasks learnt through one trunk
  EXPECT_GT(n["value"].get<double>(), 0.8) << r.out;
  EXPECT_EQ(read_json(dir.path() / "multi" / "ner" / "eval.json")["value"], n["value"]);
  // Each task's model stands alone.
  r = test::run_command(env + test::ferry_binary() + " eval " + out + "/sentiment --split test --limit 60");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("accuracy"), std::string::npos) << r.out;

  std::ofstream(dir.path() / "bad.toml") << "task = \"ner\"\nlearning-rate = 1\n";
  r = test::run_command(env + test::ferry_binary() + " finetune --config " + (dir.path() / "bad.toml").string() +
                        " --from-scratch --out " + out + "/bad");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("learning-rate"), std::string::npos) << r.out;
}

// Domain adaptation (--adapt-steps): language-model steps on the review text before the classifier
// start from the trunk and hand the adapted trunk to the classifier.
TEST(Commands, DomainAdaptationRunsBeforeTheClassifier) {
  if (!std::filesystem::exists(tokenizer::Gpt2Tokenizer::default_dir() / "vocab.bpe"))
    GTEST_SKIP() << "GPT-2 vocabulary not fetched (scripts/fetch_assets.sh)";
  test::TempDir dir;
  const auto assets = synthetic_assets(dir);
  const std::string env = "FERRY_ASSETS=" + assets.string() + " ";
  const std::string out = (dir.path() / "adapt").string();
  auto r = test::run_command(env + test::ferry_binary() +
                             " finetune --task sentiment --from-scratch --model nano --vocab-kind frequent --vocab-size 96 --seq-len 16"
                             " --batch-size 8 --labels 40 --dev-limit 20 --test-limit 20 --steps 3 --eval-every 0"
                             " --adapt-steps 20 --lr 1e-2 --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("domain adaptation: 20 LM steps"), std::string::npos) << r.out;
  // The LM loss falls during adaptation (the review text is highly repetitive).
  const auto first = r.out.find("adapt    1/20 | lm loss ");
  const auto last = r.out.find("adapt   20/20 | lm loss ");
  ASSERT_NE(first, std::string::npos) << r.out;
  ASSERT_NE(last, std::string::npos) << r.out;
  const double l1 = std::stod(r.out.substr(first + 24)), l20 = std::stod(r.out.substr(last + 24));
  EXPECT_LT(l20, l1 - 0.5) << r.out;
  EXPECT_EQ(read_json(dir.path() / "adapt" / "eval.json")["techniques"]["adapt_steps"], 20);
  r = test::run_command(env + test::ferry_binary() + " finetune --task ner --from-scratch --adapt-steps 5 --out " + out +
                        "/x");
  EXPECT_EQ(r.exit_code, 2) << r.out;
}

// --n-layer with --init keeps the model's first N blocks: a probe of a lower block's features, or a
// shallower trunk; more blocks than the model has is refused with one line.
TEST(Commands, InitWithFewerLayersKeepsTheFirstBlocks) {
  if (!std::filesystem::exists(tokenizer::Gpt2Tokenizer::default_dir() / "vocab.bpe"))
    GTEST_SKIP() << "GPT-2 vocabulary not fetched (scripts/fetch_assets.sh)";
  test::TempDir dir;
  const auto assets = synthetic_assets(dir);
  const std::string env = "FERRY_ASSETS=" + assets.string() + " ";
  const std::string base = (dir.path() / "two").string();
  const std::string common = " --seq-len 16 --batch-size 8 --labels 40 --dev-limit 20 --test-limit 20 --eval-every 0 --lr 1e-2";
  auto r = test::run_command(env + test::ferry_binary() + " finetune --task sentiment --from-scratch --model nano --n-layer 2" +
                             " --vocab-kind frequent --vocab-size 96 --steps 3" + common + " --out " + base);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = test::run_command(env + test::ferry_binary() + " finetune --task sentiment --init " + base +
                        " --n-layer 1 --freeze trunk --steps 2" + common + " --out " + base + "-probe");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("using the first 1 of"), std::string::npos) << r.out;
  const ModelFile two = load_model_file(base + "/model.ckpt");
  const ModelFile one = load_model_file(base + "-probe/model.ckpt");
  EXPECT_EQ(two.config.n_layer, 2);
  EXPECT_EQ(one.config.n_layer, 1);
  EXPECT_EQ(one.find("h.1.mlp.fc.weight"), nullptr);
  // The frozen block 0 is the two-block model's block 0, bit for bit.
  const ModelFile::Entry* a = two.find("h.0.mlp.fc.weight");
  const ModelFile::Entry* b = one.find("h.0.mlp.fc.weight");
  ASSERT_TRUE(a && b);
  ASSERT_EQ(a->numel, b->numel);
  EXPECT_TRUE(std::equal(two.data.begin() + a->offset, two.data.begin() + a->offset + a->numel, one.data.begin() + b->offset));
  r = test::run_command(env + test::ferry_binary() + " finetune --task sentiment --init " + base + " --n-layer 3 --steps 2" +
                        common + " --out " + base + "-bad");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("has only 2 blocks"), std::string::npos) << r.out;
}

// Masked-LM pretraining of an encoder: its held-out loss is the masked-token loss on held-out
// windows masked once (the same positions at every evaluation), so it falls as training goes on —
// scoring an encoder on next-token prediction instead would rise (it sees the next token).
TEST(Commands, MaskedLmHeldOutLossFalls) {
  if (!std::filesystem::exists(tokenizer::Gpt2Tokenizer::default_dir() / "vocab.bpe"))
    GTEST_SKIP() << "GPT-2 vocabulary not fetched (scripts/fetch_assets.sh)";
  test::TempDir dir;
  const auto assets = synthetic_assets(dir);
  const std::string out = (dir.path() / "mlm").string();
  auto r = test::run_command("FERRY_ASSETS=" + assets.string() + " " + test::ferry_binary() +
                             " finetune --task lm --from-scratch --model encoder-nano --vocab-kind frequent --vocab-size 96 --sources imdb"
                             " --seq-len 16 --batch-size 16 --steps 120 --eval-every 10 --lr 1e-2 --warmup 5 --out " + out);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::vector<double> dev;
  std::ifstream m(dir.path() / "mlm" / "metrics.jsonl");
  for (std::string line; std::getline(m, line);) {
    const auto e = nlohmann::json::parse(line);
    if (e.contains("dev")) dev.push_back(-e["dev"].get<double>());
  }
  ASSERT_EQ(dev.size(), 12u) << r.out;
  EXPECT_LT(dev.back(), dev.front() - 0.3) << r.out;
  EXPECT_LT(dev.back(), std::log(96.0) - 1.0) << r.out;  // well below a uniform guess
  const nlohmann::json j = read_json(dir.path() / "mlm" / "eval.json");
  EXPECT_EQ(j["metric"], "heldout_loss");
  EXPECT_NEAR(j["value"].get<double>(), *std::min_element(dev.begin(), dev.end()), 1e-9);
}

}  // namespace
}  // namespace ferry
