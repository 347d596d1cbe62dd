// tests/data/pretrain_shards_test.cpp — pretraining on llm.c token shards: a folder (train and val
// splits) or a glob (validation derived from it), the vocabulary checked against the model, and the
// command line writing metrics, the loss curve and checkpoints.
#include <fstream>

#include "engine/checkpoint/checkpoint.h"
#include "engine/data/shard.h"
#include "base/error.h"
#include "engine/random.h"
#include "engine/train/trainer.h"
#include "tests/support/support.h"
#include "parallel/step_factory.h"

namespace ferry {
namespace {

// The step as `ferry pretrain` composes it (parallel/step_factory.h).
PretrainOptions local_options() {
  PretrainOptions o;
  o.make_step = parallel::make_gpt_step;
  return o;
}

namespace fs = std::filesystem;

constexpr int kVocab = 300;

// A learnable stream: mostly the successor rule next = (3·prev + 1) mod 300, sometimes a random
// token (so the model must use context, and the loss cannot reach zero).
std::vector<int32_t> stream(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> t(n);
  int32_t prev = 1;
  for (size_t i = 0; i < n; ++i) {
    prev = rng.below(10) == 0 ? int32_t(rng.below(kVocab)) : (3 * prev + 1) % kVocab;
    t[i] = prev;
  }
  return t;
}

void write_corpus(const fs::path& dir) {
  fs::create_directories(dir);
  data::write_shard(dir / "toy_train_000000.bin", stream(6000, 1), kVocab);
  data::write_shard(dir / "toy_train_000001.bin", stream(6000, 2), kVocab);
  data::write_shard(dir / "toy_val_000000.bin", stream(3000, 3), kVocab);
}

RunConfig shard_run(const fs::path& data, const fs::path& out) {
  RunConfig c;
  c.model = gpt_preset("micro");
  c.model.vocab_size = kVocab;
  c.train.batch_size = 4;
  c.train.seq_len = 32;
  c.train.max_steps = 60;
  c.train.lr = 3e-3f;
  c.train.min_lr = 3e-4f;
  c.train.warmup_steps = 5;
  c.train.eval_every = 60;
  c.train.eval_batches = 4;
  c.train.log_every = 30;
  c.train.out_dir = out.string();
  c.data.source = "shards";
  c.data.path = data.string();
  return c;
}

size_t shards_of(const BatchSource& s) { return dynamic_cast<const ShardSource&>(s).loader().shard_count(); }

TEST(PretrainShards, FolderTrainsAndLowersValidationLoss) {
  test::TempDir dir;
  write_corpus(dir.path() / "corpus");
  const RunConfig c = shard_run(dir.path() / "corpus", dir.path() / "run");
  DataSources d = make_data_sources(c);
  EXPECT_EQ(shards_of(*d.train), 2u);
  EXPECT_EQ(shards_of(*d.val), 1u);
  const TrainSummary s = pretrain(c, std::move(d), local_options());
  std::printf("val loss %.3f -> %.3f (uniform %.3f)\n", s.initial_val_loss, s.final_val_loss, std::log(double(kVocab)));
  EXPECT_NEAR(s.initial_val_loss, std::log(double(kVocab)), 0.3);
  EXPECT_LT(s.final_val_loss, s.initial_val_loss - 1.5);
}

TEST(PretrainShards, GlobDerivesTheValidationShards) {
  test::TempDir dir;
  write_corpus(dir.path() / "corpus");
  RunConfig c = shard_run("", dir.path() / "run");
  c.data.path = (dir.path() / "corpus" / "toy_train_*.bin").string();
  DataSources d = make_data_sources(c);
  EXPECT_EQ(shards_of(*d.train), 2u);
  EXPECT_EQ(shards_of(*d.val), 1u);
  // One train shard by name: the validation is the matching val file.
  c.data.path = (dir.path() / "corpus" / "toy_train_000001.bin").string();
  EXPECT_THROW(make_data_sources(c), UserError);  // toy_val_000001.bin does not exist
  c.data.path = (dir.path() / "corpus" / "toy_*.bin").string();
  try {
    make_data_sources(c);
    ADD_FAILURE() << "a glob without _train_ must be refused";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("_train_"), std::string::npos) << e.what();
  }
}

TEST(PretrainShards, TokenIdsBeyondTheModelsVocabularyAreRefused) {
  test::TempDir dir;
  write_corpus(dir.path() / "corpus");
  RunConfig c = shard_run(dir.path() / "corpus", dir.path() / "run");
  c.model.vocab_size = 256;  // the shards hold ids up to 299
  try {
    make_data_sources(c);
    ADD_FAILURE() << "ids >= vocab must be refused";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("toy_train_000000.bin"), std::string::npos) << e.what();
  }
}

TEST(PretrainShards, CommandLineWritesMetricsPlotAndCheckpoints) {
  test::TempDir dir;
  write_corpus(dir.path() / "corpus");
  const fs::path cfg = dir.path() / "run.toml", out = dir.path() / "run";
  std::ofstream(cfg) << "[model]\npreset = \"nano\"\nvocab_size = 300\n"
                        "[train]\nbatch_size = 2\nseq_len = 16\nmax_steps = 6\nwarmup_steps = 1\neval_every = 3\n"
                        "eval_batches = 2\ncheckpoint_every = 3\n[data]\nsource = \"synthetic\"\n";
  const auto r = test::run_command(test::ferry_binary() + " pretrain --config " + cfg.string() + " --data " +
                                   (dir.path() / "corpus").string() + " --out " + out.string());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("MFU"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ETA"), std::string::npos) << r.out;
  std::ifstream svg_in(out / "loss.svg");
  const std::string svg{std::istreambuf_iterator<char>(svg_in), std::istreambuf_iterator<char>()};
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_NE(svg.find(">train<"), std::string::npos);
  EXPECT_NE(svg.find(">validation<"), std::string::npos);
  EXPECT_EQ(list_checkpoints(out / "checkpoints").size(), 2u);
  EXPECT_EQ(read_checkpoint(out / "checkpoints" / "step_00000006.ckpt").state.at("run_config").at("data").at("source"),
            "shards");
}

}  // namespace
}  // namespace ferry
