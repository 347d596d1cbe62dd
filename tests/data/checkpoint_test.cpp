// tests/data/checkpoint_test.cpp — the checkpoint file: exact round trip, the published header,
// and one clear refusal per way a checkpoint can be bad (truncated, corrupted, other version,
// other model), none of which touches the last good checkpoint.
#include "engine/checkpoint/checkpoint.h"

#include <cstring>
#include <fstream>

#include "engine/checkpoint/atomic_file.h"
#include "engine/checkpoint/hash64.h"
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
using test::file_bytes;
using test::write_bytes;

Checkpoint sample_checkpoint() {
  Checkpoint ck;
  ck.step = 42;
  ck.model = gpt_preset("nano");
  ck.model.vocab_size = 256;
  ck.params = gpt_param_table(ck.model);
  const size_t n = ck.params.back().offset + ck.params.back().numel;
  Rng rng(7);
  for (size_t i = 0; i < n; ++i) {
    ck.parameters.push_back(float(rng.normal()));
    ck.adam_m.push_back(float(rng.normal()));
    ck.adam_v.push_back(float(rng.uniform()));
  }
  ck.adam_steps = 42;
  ck.state = {{"rng", {{"sample", 123456789012345ull}}}, {"data", {{"train", {{"cursor", 77}}}}}};
  return ck;
}

template <typename Fn>
std::string user_error_of(Fn fn) {
  try {
    fn();
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

TEST(Hash64, DoesNotDependOnHowBytesAreSplit) {
  std::string s;
  for (int i = 0; i < 1000; ++i) s += char(i * 7 + 3);
  const uint64_t whole = hash64(s.data(), s.size());
  for (size_t cut : {0, 1, 3, 8, 9, 500, 999}) {
    Hash64 h;
    h.update(s.data(), cut);
    h.update(s.data() + cut, s.size() - cut);
    EXPECT_EQ(h.digest(), whole) << "cut at " << cut;
  }
  std::string t = s;
  t[500] ^= 1;
  EXPECT_NE(hash64(t.data(), t.size()), whole);
  EXPECT_NE(hash64(s.data(), s.size() - 1), whole);
  // Trailing zero bytes change the length, hence the hash.
  const std::string z1(7, '\0'), z2(8, '\0');
  EXPECT_NE(hash64(z1.data(), z1.size()), hash64(z2.data(), z2.size()));
}

TEST(Checkpoint, RoundTripIsExactAndHeaderFollowsTheLayout) {
  test::TempDir dir;
  const Checkpoint ck = sample_checkpoint();
  const fs::path file = dir.path() / "a.ckpt";
  write_checkpoint(file, ck);
  const Checkpoint back = read_checkpoint(file);
  EXPECT_EQ(back.step, 42);
  EXPECT_EQ(model_difference(back.model, ck.model), "");
  EXPECT_EQ(0, std::memcmp(back.parameters.data(), ck.parameters.data(), ck.parameters.size() * 4));
  EXPECT_EQ(0, std::memcmp(back.adam_m.data(), ck.adam_m.data(), ck.adam_m.size() * 4));
  EXPECT_EQ(0, std::memcmp(back.adam_v.data(), ck.adam_v.data(), ck.adam_v.size() * 4));
  EXPECT_EQ(back.adam_steps, 42);
  EXPECT_EQ(back.state, ck.state);
  ASSERT_EQ(back.params.size(), ck.params.size());
  EXPECT_EQ(back.params[0].name, "wte");

  const auto bytes = file_bytes(file);
  EXPECT_EQ(std::string(bytes.data(), 8), "FERRYCKP");
  uint32_t version;
  uint64_t meta, payload, stored;
  std::memcpy(&version, bytes.data() + 8, 4);
  std::memcpy(&meta, bytes.data() + 16, 8);
  std::memcpy(&payload, bytes.data() + 24, 8);
  EXPECT_EQ(version, kCheckpointVersion);
  EXPECT_EQ(payload, 3 * ck.parameters.size() * sizeof(float));
  EXPECT_EQ(bytes.size(), 32 + meta + payload + 8);
  std::memcpy(&stored, bytes.data() + bytes.size() - 8, 8);
  EXPECT_EQ(stored, hash64(bytes.data(), bytes.size() - 8));
  // The parameters start right after the metadata, as raw little-endian f32.
  float first;
  std::memcpy(&first, bytes.data() + 32 + meta, 4);
  EXPECT_EQ(first, ck.parameters[0]);
}

TEST(Checkpoint, RefusesTruncatedCorruptedAndOtherVersions) {
  test::TempDir dir;
  const fs::path good = dir.path() / "good.ckpt";
  write_checkpoint(good, sample_checkpoint());
  const auto bytes = file_bytes(good);

  const fs::path bad = dir.path() / "bad.ckpt";
  for (size_t keep : {size_t(0), size_t(20), size_t(100), bytes.size() - 1}) {
    write_bytes(bad, std::vector<char>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(keep)));
    const std::string e = user_error_of([&] { read_checkpoint(bad); });
    EXPECT_NE(e.find("bad.ckpt"), std::string::npos) << e;
    EXPECT_NE(e.find("truncated"), std::string::npos) << keep << ": " << e;
  }
  for (size_t at : {size_t(40), bytes.size() / 2, bytes.size() - 9}) {
    auto flipped = bytes;
    flipped[at] ^= 0x10;
    write_bytes(bad, flipped);
    const std::string e = user_error_of([&] { read_checkpoint(bad); });
    EXPECT_NE(e.find("checksum"), std::string::npos) << at << ": " << e;
  }
  auto other = bytes;
  other[8] = 9;
  write_bytes(bad, other);
  EXPECT_NE(user_error_of([&] { read_checkpoint(bad); }).find("version 9"), std::string::npos);
  other = bytes;
  other[0] = 'X';
  write_bytes(bad, other);
  EXPECT_NE(user_error_of([&] { read_checkpoint(bad); }).find("not a ferry checkpoint"), std::string::npos);
  EXPECT_NE(user_error_of([&] { read_checkpoint(dir.path() / "missing.ckpt"); }).find("cannot open"), std::string::npos);
}

TEST(Checkpoint, AnUncommittedWriteLeavesThePreviousFile) {
  test::TempDir dir;
  const fs::path file = dir.path() / "step.ckpt";
  write_checkpoint(file, sample_checkpoint());
  const auto before = file_bytes(file);
  {
    AtomicFile f(file);
    f.write("half a checkpoint");
    // destroyed without commit(): a failure in the middle of a write
  }
  EXPECT_EQ(file_bytes(file), before);
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1u) << "the temporary file must be gone";
}

TEST(Checkpoint, PruneKeepsTheNewest) {
  test::TempDir dir;
  for (int s : {10, 20, 30, 40}) std::ofstream(checkpoint_file(dir.path(), s)) << "x";
  std::ofstream(dir.path() / "notes.txt") << "not a checkpoint";
  prune_checkpoints(dir.path(), 2);
  const auto left = list_checkpoints(dir.path());
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0].first, 30);
  EXPECT_EQ(left[1].first, 40);
  EXPECT_TRUE(fs::exists(dir.path() / "notes.txt"));
}

RunConfig small_run(const fs::path& out) {
  RunConfig c;
  c.model = gpt_preset("nano");
  c.model.vocab_size = 256;
  c.train.batch_size = 2;
  c.train.seq_len = 16;
  c.train.max_steps = 4;
  c.train.warmup_steps = 1;
  c.train.eval_every = 0;
  c.train.checkpoint_every = 2;
  c.train.out_dir = out.string();
  return c;
}

TEST(Checkpoint, ResumeRefusesAnotherModelAndKeepsTheCheckpoint) {
  test::TempDir dir;
  RunConfig c = small_run(dir.path());
  pretrain(c, make_data_sources(c), local_options());
  const auto found = list_checkpoints(checkpoint_dir(c));
  ASSERT_EQ(found.size(), 2u);
  const fs::path last = found.back().second;
  const auto before = file_bytes(last);
  EXPECT_EQ(read_checkpoint(last).step, 4);

  RunConfig other = c;
  other.model.n_embd = 32;
  PretrainOptions o = local_options();
  o.resume = last.string();
  const std::string e = user_error_of([&] { pretrain(other, make_data_sources(other), o); });
  EXPECT_NE(e.find("another model"), std::string::npos) << e;
  EXPECT_NE(e.find("model.n_embd: 16 vs 32"), std::string::npos) << e;
  EXPECT_EQ(file_bytes(last), before);

  // A corrupted newest checkpoint is refused by --resume auto, not silently skipped or rewritten.
  auto flipped = before;
  flipped[flipped.size() / 2] ^= 1;
  write_bytes(last, flipped);
  o.resume = "auto";
  EXPECT_NE(user_error_of([&] { pretrain(c, make_data_sources(c), o); }).find("checksum"), std::string::npos);
  EXPECT_EQ(file_bytes(last), flipped);
}

}  // namespace
}  // namespace ferry
