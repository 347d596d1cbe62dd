// tests/data/lm_eval_test.cpp — `ferry eval --task lm|mlm`: a language model's loss over token
// shards, checked against a reference computed outside ferry, and its reading order and errors.
//
// The reference (tests/fixtures/lm_eval, written by tools/make_lm_eval_fixture.py with NumPy alone):
// a random 2-layer GPT-2 as an llm.c model file (fp32 and bf16, vocabulary 200 padded to 256 rows
// with non-zero padding) and as Hugging Face safetensors with a config.json, a shard holding exactly
// one batch (B=2, T=16), and the batch's mean next-token loss from an fp64 forward pass with HF GPT-2
// semantics, for the fp32 weights and for the bf16-rounded ones.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "engine/backend.h"
#include "engine/data/shard.h"
#include "base/error.h"
#include "engine/finetune/inference.h"
#include "tests/support/support.h"
#include "tools/convert/load_model.h"
#include "tools/tasks/lm_eval.h"
#include "tools/tasks/model_setup.h"

namespace ferry {
namespace {

namespace fs = std::filesystem;
using tasks::LmEvalOptions;

fs::path fixture(const std::string& name) { return test::source_dir() / "tests/fixtures/lm_eval" / name; }

nlohmann::json expected() {
  std::ifstream f(fixture("expected.json"));
  return nlohmann::json::parse(f);
}

std::string read_text(const fs::path& p) {
  std::ifstream f(p);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// `ferry eval` with stdout captured apart from stderr.
struct EvalRun {
  int exit_code;
  std::string stdout_text, all_but_stdout;
};
EvalRun ferry_eval(const std::string& args, const fs::path& dir) {
  const fs::path out = dir / "stdout.txt";
  const auto r = test::run_command("(" + test::ferry_binary() + " eval " + args + " > " + out.string() + ")");
  return {r.exit_code, read_text(out), r.out};
}

TEST(LmEvalFixture, IsNotTrivial) {
  // A reference near ln V would not tell a broken forward pass from a working one, and a bf16
  // reference within the tolerance of the fp32 one would not show that the bf16 file was read as bf16.
  const auto e = expected();
  EXPECT_GT(std::abs(e["loss_f32_weights"].get<double>() - e["uniform_loss"].get<double>()), 1.0);
  EXPECT_GT(std::abs(e["loss_f32_weights"].get<double>() - e["loss_bf16_weights"].get<double>()), 1e-4);
}

// The llm.c files (fp32, bf16), the safetensors written by the NumPy script (heads from its
// config.json), and ferry's own conversions of the fp32 file: checkpoint, run folder, safetensors,
// and a bf16 checkpoint (scored against the NumPy forward of the bf16-rounded weights).
TEST(LmEvalReference, EveryKindOfModelFileMatchesTheNumpyForwardWithin1e5) {
  test::TempDir dir;
  const auto e = expected();
  const std::string f32 = fixture("gpt_f32.bin").string();
  for (const char* out : {"model.ckpt", "model.safetensors", "run/checkpoints/step_00000000.ckpt", "bf16.ckpt"}) {
    fs::create_directories((dir.path() / out).parent_path());
    const std::string dtype = std::string(out) == "bf16.ckpt" ? " --dtype bf16" : "";
    const auto r =
        test::run_command(test::ferry_binary() + " convert " + f32 + " " + (dir.path() / out).string() + dtype);
    ASSERT_EQ(r.exit_code, 0) << r.out;
  }
  struct Case {
    std::string model;
    double want;
  };
  const double f = e["loss_f32_weights"].get<double>(), b = e["loss_bf16_weights"].get<double>();
  const std::vector<Case> cases = {{f32, f},
                                   {fixture("gpt_bf16.bin").string(), b},
                                   {fixture("hf/model.safetensors").string(), f},
                                   {(dir.path() / "model.ckpt").string(), f},
                                   {(dir.path() / "model.safetensors").string(), f},
                                   {(dir.path() / "run").string(), f},
                                   {(dir.path() / "bf16.ckpt").string(), b}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.model);
    const EvalRun r = ferry_eval("--task lm --model " + c.model + " --data " +
                                     fixture("lm_eval_val_000000.bin").string() +
                                     " --batch-size 2 --seq-len 16 --device cpu",
                                 dir.path());
    ASSERT_EQ(r.exit_code, 0) << r.all_but_stdout;
    // Exactly one line on stdout: the JSON object, its keys in the documented order.
    ASSERT_EQ(std::count(r.stdout_text.begin(), r.stdout_text.end(), '\n'), 1) << r.stdout_text;
    const auto j = nlohmann::ordered_json::parse(r.stdout_text);
    std::vector<std::string> keys;
    for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
    EXPECT_EQ(keys, (std::vector<std::string>{"loss", "perplexity", "tokens", "windows"}));
    EXPECT_NEAR(j["loss"].get<double>(), c.want, 1e-5);
    EXPECT_NEAR(j["perplexity"].get<double>() / std::exp(c.want), 1.0, 1e-5);
    EXPECT_EQ(j["tokens"].get<int>(), 32);
    EXPECT_EQ(j["windows"].get<int>(), 1);
  }
}

TEST(LmEvalReference, StdoutIsTheSameBytesRunAfterRun) {
  test::TempDir dir;
  const std::string args = fixture("gpt_f32.bin").string() + " --data " + fixture("lm_eval_val_000000.bin").string() +
                           " --batch-size 2 --seq-len 16";  // no --task: a model without one is scored as lm
  const EvalRun a = ferry_eval(args, dir.path()), b = ferry_eval(args, dir.path());
  ASSERT_EQ(a.exit_code, 0) << a.all_but_stdout;
  EXPECT_EQ(a.stdout_text, b.stdout_text);
  EXPECT_NE(a.all_but_stdout.find("eval 1/1"), std::string::npos) << "progress belongs on stderr";
}

// ---- reading order and errors, in process ----------------------------------------------------

const ModelFile& fixture_model() {
  static const ModelFile m = convert::load_any_model_file(fixture("gpt_f32.bin"));
  return m;
}

std::vector<uint16_t> random_tokens(size_t n, int vocab, std::mt19937_64& rng) {
  std::vector<uint16_t> t(n);
  for (auto& x : t) x = static_cast<uint16_t>(rng() % static_cast<uint64_t>(vocab));
  return t;
}

tasks::LmEvalResult eval_on(const std::string& data, int B, int T, size_t batches = 0, const std::string& task = "lm",
                            const ModelFile& model = fixture_model()) {
  auto cpu = make_backend("cpu");
  LmEvalOptions o;
  o.task = task;
  o.data = data;
  o.batch = B;
  o.seq_len = T;
  o.max_windows = batches;
  return tasks::evaluate_lm(model, *cpu, o);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no error)";
}

// Two validation shards (a train shard beside them is not read): the first holds 3 windows of
// B·T+1 = 33 tokens and a 20-token tail, the second 2 windows exactly plus one token. The folder's
// loss must be the mean of the 5 windows scored one by one, in shard-name order, tails unread.
TEST(LmEval, ReadsWindowsInShardOrderLikeLlmcsValidationLoader) {
  test::TempDir dir;
  std::mt19937_64 rng(test::test_seed());
  const int B = 2, T = 16, W = B * T;
  const auto s0 = random_tokens(3 * W + 1 + 20, 200, rng), s1 = random_tokens(2 * W + 1, 200, rng);
  data::write_shard(dir.path() / "x_val_000000.bin", s0);
  data::write_shard(dir.path() / "x_val_000001.bin", s1);
  data::write_shard(dir.path() / "x_train_000000.bin", random_tokens(9 * W + 1, 200, rng));
  std::vector<double> one_by_one;
  auto window = [&](const std::vector<uint16_t>& s, int k) {
    const fs::path f = dir.path() / "single" / "w.bin";
    fs::create_directories(f.parent_path());
    data::write_shard(f, std::vector<uint16_t>(s.begin() + k * W, s.begin() + (k + 1) * W + 1));
    return eval_on(f.string(), B, T).loss;
  };
  for (int k = 0; k < 3; ++k) one_by_one.push_back(window(s0, k));
  for (int k = 0; k < 2; ++k) one_by_one.push_back(window(s1, k));
  const auto all = eval_on(dir.path().string(), B, T);
  EXPECT_EQ(all.windows, 5u);
  EXPECT_EQ(all.tokens, 5u * W);
  double sum = 0;
  for (double l : one_by_one) sum += l;
  EXPECT_DOUBLE_EQ(all.loss, sum / 5);
  EXPECT_DOUBLE_EQ(all.perplexity, std::exp(all.loss));
  // --batches N: the first N windows.
  const auto first2 = eval_on(dir.path().string(), B, T, 2);
  EXPECT_EQ(first2.windows, 2u);
  EXPECT_DOUBLE_EQ(first2.loss, (one_by_one[0] + one_by_one[1]) / 2);
  const auto first4 = eval_on(dir.path().string(), B, T, 4);
  EXPECT_DOUBLE_EQ(first4.loss, (one_by_one[0] + one_by_one[1] + one_by_one[2] + one_by_one[3]) / 4);
}

TEST(LmEval, DefaultsAreFourRowsOfTheModelsPositions) {
  test::TempDir dir;
  std::mt19937_64 rng(test::test_seed());
  // max_seq_len 32 caps the default T at 32 (not 1024): one window of 4 x 32 + 1 tokens.
  data::write_shard(dir.path() / "a.bin", random_tokens(4 * 32 + 1, 200, rng));
  const auto r = eval_on((dir.path() / "a.bin").string(), 0, 0);
  EXPECT_EQ(r.batch, 4);
  EXPECT_EQ(r.seq_len, 32);
  EXPECT_EQ(r.windows, 1u);
  EXPECT_EQ(r.tokens, 128u);
}

// Models of each kind the errors need, written as ferry writes fine-tuned models.
fs::path write_task_model(const fs::path& file, const std::string& task, bool causal) {
  tasks::TaskModel m;
  m.meta.config = fixture_model().config;
  m.meta.config.causal = causal;
  m.meta.vocab = tasks::TaskVocab::compact_from_counts(std::vector<int64_t>(m.meta.config.vocab_size, 1),
                                                       m.meta.config.vocab_size);
  m.meta.task = task;
  m.meta.head = tasks::head_for_task(task, m.meta.config, "", {});
  m.meta.seq_len = 16;
  m.batch = 2;
  const std::vector<float> params = m.initial_parameters(7, "", nullptr);
  save_model_file(file, m.meta.config, m.meta.to_json(), m.graph(false, 0).graph, params);
  return file;
}

struct EvalError {
  const char* name;
  std::string args;            // after `ferry eval`
  std::vector<const char*> must_say;
};

TEST(LmEvalErrors, OneLineNamingTheProblemAndExitTwo) {
  test::TempDir dir;
  std::mt19937_64 rng(test::test_seed());
  const std::string model = fixture("gpt_f32.bin").string(), shard = fixture("lm_eval_val_000000.bin").string();
  std::vector<uint16_t> bad = random_tokens(33, 200, rng);
  bad[9] = 250;  // a vocabulary-250 id in front of a vocabulary-200 model
  data::write_shard(dir.path() / "big_vocab.bin", bad);
  const std::string encoder = write_task_model(dir.path() / "enc/model.ckpt", "lm", false).string();
  const std::string classifier = write_task_model(dir.path() / "cls/model.ckpt", "sentiment", true).string();
  const std::string bt = " --batch-size 2 --seq-len 16";
  const std::vector<EvalError> cases = {
      {"shards_too_small", "--task lm --model " + model + " --data " + shard, {"33 tokens", "4 x 32 + 1 = 129"}},
      {"too_many_batches", "--task lm --model " + model + " --data " + shard + bt + " --batches 2",
       {"--batches 2", "hold 1 windows"}},
      {"vocabulary_mismatch", "--task lm --model " + model + " --data " + (dir.path() / "big_vocab.bin").string() + bt,
       {"big_vocab.bin", "token id 250", "position 9", "vocabulary of 200"}},
      {"seq_len_over_positions", "--task lm --model " + model + " --data " + shard + " --seq-len 64",
       {"--seq-len 64", "32 positions"}},
      {"no_data", "--task lm --model " + model, {"--data is required"}},
      {"missing_shards", "--task lm --model " + model + " --data " + (dir.path() / "nothing_*.bin").string() + bt,
       {"nothing_*.bin"}},
      {"not_a_model", "--task lm --model " + shard + " --data " + shard + bt, {"lm_eval_val_000000.bin", "neither"}},
      {"classifier", "--task lm --model " + classifier + " --data " + shard + bt, {"sentiment model", "not a language model"}},
      {"lm_on_encoder", "--task lm --model " + encoder + " --data " + shard + bt, {"bidirectional encoder", "--task mlm"}},
      {"mlm_on_gpt", "--task mlm --model " + model + " --data " + shard + bt, {"causal GPT", "--task lm"}},
      {"task_flag_with_lm", "--task lm --model " + model + " --data " + shard + bt + " --split dev", {"--split"}},
      {"two_models", model + " --model " + encoder + " --data " + shard, {"two models"}},
      {"zero_batch", "--task lm --model " + model + " --data " + shard + " --batch-size 0", {"--batch-size must be positive"}},
  };
  for (const EvalError& c : cases) {
    SCOPED_TRACE(c.name);
    // stderr only (stdout must stay empty on an error, so scripts never read a half result).
    const auto r = test::run_command("(" + test::ferry_binary() + " eval " + c.args + " --device cpu 2>&1 >/dev/null)");
    EXPECT_EQ(r.exit_code, 2) << r.out;
    // stderr: the device line and the model line may precede the error; the error is one line.
    const size_t at = r.out.find("ferry: error: ");
    ASSERT_NE(at, std::string::npos) << r.out;
    const std::string line = r.out.substr(at);
    EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1) << line;
    for (const char* s : c.must_say) EXPECT_NE(line.find(s), std::string::npos) << "'" << s << "' not in: " << line;
  }
}

// --task mlm: the encoder's rows masked as fine-tuning masks its held-out windows, the loss the mean
// over every masked position — recomputed here from the graph's logits and an fp64 cross-entropy.
TEST(LmEval, MaskedLossIsTheMeanOverMaskedPositions) {
  test::TempDir dir;
  std::mt19937_64 rng(test::test_seed());
  const fs::path file = write_task_model(dir.path() / "enc/model.ckpt", "lm", false);
  const ModelFile enc = convert::load_any_model_file(file);
  const int B = 2, T = 16, N = 3;
  const auto tokens = random_tokens(size_t(N) * B * T + 1, 200, rng);
  data::write_shard(dir.path() / "s.bin", tokens);
  const auto r = eval_on((dir.path() / "s.bin").string(), B, T, 0, "mlm", enc);
  EXPECT_EQ(r.windows, uint64_t(N));

  // The same masking, then the logits of the same task graph, and the cross-entropy here.
  const tasks::ModelMeta meta = tasks::ModelMeta::from_json(enc.meta);
  tasks::TaskModel m;
  m.meta = meta;
  m.meta.seq_len = T;
  m.batch = B;
  TaskGraph g = m.graph(false, 0);
  std::vector<float> params(static_cast<size_t>(g.graph.param_count()));
  ASSERT_EQ(load_params_by_name(enc, g.graph, params), static_cast<int>(g.graph.params.size()));
  const tasks::GraphInputs in = tasks::GraphInputs::of(g);
  auto cpu = make_backend("cpu");
  const int V = meta.config.vocab_size, logits_value = g.logits;
  g.graph.mark_output(logits_value);  // a language-model head leaves its logits in place; read them here
  Inference inf(std::move(g.graph), logits_value, *cpu);
  inf.set_parameters(params);
  std::mt19937_64 mask_rng = tasks::heldout_mask_rng(1337);
  double sum = 0;
  uint64_t n = 0;
  for (int k = 0; k < N; ++k) {
    std::vector<tasks::Example> rows(B);
    std::vector<const tasks::Example*> ptrs;
    for (int b = 0; b < B; ++b) {
      const auto first = tokens.begin() + (size_t(k) * B + b) * T;
      rows[b].ids.assign(first, first + T);
      tasks::mask_for_mlm(rows[b], meta, mask_rng);
      ptrs.push_back(&rows[b]);
    }
    const std::vector<float> logits = inf.logits(tasks::make_batch(in, HeadKind::LanguageModel, ptrs, B, T, meta.vocab.pad()));
    for (int b = 0; b < B; ++b)
      for (int t = 0; t < T; ++t) {
        const int label = rows[b].token_labels[t];
        if (label < 0) continue;
        // Rows of the padded vocabulary (engine/model/gpt.h); the first V columns are the tokens.
        const float* l = logits.data() + (size_t(b) * T + t) * padded_vocab_size(V);
        double mx = l[0], z = 0;
        for (int v = 1; v < V; ++v) mx = std::max<double>(mx, l[v]);
        for (int v = 0; v < V; ++v) z += std::exp(double(l[v]) - mx);
        sum += mx + std::log(z) - l[label];
        ++n;
      }
  }
  ASSERT_GT(n, 0u);
  EXPECT_EQ(r.tokens, n);
  EXPECT_NEAR(r.loss, sum / double(n), 1e-5);
  // Another seed masks other positions.
  auto cpu2 = make_backend("cpu");
  LmEvalOptions o;
  o.task = "mlm";
  o.data = (dir.path() / "s.bin").string();
  o.batch = B;
  o.seq_len = T;
  o.seed = 1338;
  EXPECT_NE(tasks::evaluate_lm(enc, *cpu2, o).loss, r.loss);
}

}  // namespace
}  // namespace ferry
