// tests/data/checkpoint_test.cpp — the checkpoint file: exact round trip, the published header,
// and one clear refusal per way a checkpoint can be bad (truncated, corrupted, other version,
// other model), none of which touches the last good checkpoint; bf16 parameters in a model file
// (rounded to nearest even, ties included, against a reference written here) and their refusals.
#include "engine/checkpoint/checkpoint.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <random>

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

// ---- bf16 parameters -------------------------------------------------------------------------

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// The reference rounding, written from the definition rather than the bit trick the writer uses:
// of the two bf16 values around x (x with its low 16 bits cleared, and the next one away from zero),
// the nearer in exact (double) arithmetic; on a tie, the one whose last mantissa bit is 0. Past the
// largest bf16 the next one is 2^128, which rounds to infinity (IEEE's overflow under nearest-even).
float bf16_reference(float x) {
  if (std::isnan(x) || std::isinf(x)) return x;
  const uint32_t down = bits_of(x) & 0xffff0000u, up = down + 0x10000u;
  auto value = [](uint32_t u) {
    return (u & 0x7fffffffu) == 0x7f800000u ? std::copysign(std::ldexp(1.0, 128), double(from_bits(u)))
                                            : double(from_bits(u));
  };
  const double d = std::abs(double(x) - value(down)), u = std::abs(value(up) - double(x));
  if (d < u) return from_bits(down);
  if (u < d) return from_bits(up);
  return from_bits((down & 0x10000u) == 0 ? down : up);
}

// A model file: the sample's model and parameters (the first ones replaced by `values`), no
// optimizer state, a fine-tuned model's state.
Checkpoint model_file_checkpoint(const std::vector<float>& values) {
  Checkpoint ck = sample_checkpoint();
  ck.step = 7;
  ck.adam_steps = 0;
  ck.adam_m.clear();
  ck.adam_v.clear();
  std::copy_n(values.begin(), std::min(values.size(), ck.parameters.size()), ck.parameters.begin());
  ck.state = {{"finetune", {{"task", "lm"}, {"vocab", {"a", "b", "c"}}}}};
  return ck;
}

TEST(CheckpointBf16, RoundsToNearestEvenWithTiesAndKeepsBf16ValuesBitExact) {
  // Ties (exactly halfway between two bf16 values) go to the even mantissa, whichever way that is;
  // one tie carries into the exponent.
  const std::vector<std::pair<float, float>> ties = {
      {1.0f + 0x1.0p-8f, 1.0f},                  // between 1 (even) and 1 + 2^-7 (odd): down
      {1.0f + 0x3.0p-8f, 1.0f + 0x1.0p-6f},      // between 1 + 2^-7 (odd) and 1 + 2^-6 (even): up
      {-(1.0f + 0x1.0p-8f), -1.0f},
      {-(1.0f + 0x3.0p-8f), -(1.0f + 0x1.0p-6f)},
      {0x1.ffp0f, 2.0f},                          // 1.9921875 + half an ulp: up into the next binade
  };
  std::vector<float> values;
  for (const auto& t : ties) values.push_back(t.first);
  // Values bf16 holds exactly: every kind of bit pattern (random upper halves), signed zeros,
  // infinities, subnormals, the largest finite bf16, a quiet and a signalling NaN.
  std::mt19937_64 rng(test::test_seed());
  const size_t exact_from = values.size();
  for (uint32_t u : {0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x00010000u, 0x807f0000u, 0x7f7f0000u,
                     0x7fc10000u, 0x7f810000u})
    values.push_back(from_bits(u));
  for (int i = 0; i < 1500; ++i) {
    const uint32_t u = static_cast<uint32_t>(rng()) & 0xffff0000u;
    values.push_back(from_bits((u & 0x7f800000u) == 0x7f800000u ? u & 0xbfffffffu : u));  // no NaN/inf here
  }
  const size_t exact_to = values.size();
  // Anything else: normal values of every scale, subnormals, values that round up to infinity.
  for (int i = 0; i < 2500; ++i) values.push_back(from_bits(static_cast<uint32_t>(rng()) & 0xff7fffffu));
  values.push_back(std::numeric_limits<float>::max());
  values.push_back(std::numeric_limits<float>::denorm_min());

  test::TempDir dir;
  Checkpoint ck = model_file_checkpoint(values);
  ASSERT_GT(ck.parameters.size(), values.size());
  ck.param_dtype = ParamDtype::BF16;
  const fs::path file = dir.path() / "m.ckpt";
  write_checkpoint(file, ck);
  const Checkpoint back = read_checkpoint(file);
  EXPECT_EQ(back.param_dtype, ParamDtype::BF16);
  ASSERT_EQ(back.parameters.size(), ck.parameters.size());
  for (size_t i = 0; i < ties.size(); ++i) EXPECT_EQ(back.parameters[i], ties[i].second) << "tie " << i;
  for (size_t i = exact_from; i < exact_to; ++i)
    ASSERT_EQ(bits_of(back.parameters[i]), bits_of(values[i])) << std::hex << bits_of(values[i]);
  for (size_t i = 0; i < ck.parameters.size(); ++i) {
    const float x = ck.parameters[i], want = bf16_reference(x);
    if (std::isnan(x)) {
      ASSERT_TRUE(std::isnan(back.parameters[i])) << i;
      continue;
    }
    ASSERT_EQ(bits_of(back.parameters[i]), bits_of(want)) << i << ": " << x;
    if (std::isnormal(x) && std::isfinite(want))  // within half a bf16 ulp: 2^-8 of the value
      ASSERT_LE(std::abs(double(back.parameters[i]) - double(x)), std::ldexp(std::abs(double(x)), -8)) << x;
  }
  EXPECT_EQ(back.parameters[values.size() - 2], INFINITY) << "float max lies past bf16's halfway point to infinity";
  // Everything else a model file carries comes back as written.
  EXPECT_EQ(back.step, 7);
  EXPECT_EQ(back.state, ck.state);
  EXPECT_EQ(model_difference(back.model, ck.model), "");
  ASSERT_EQ(back.params.size(), ck.params.size());
  EXPECT_TRUE(back.adam_m.empty() && back.adam_v.empty());

  // The file: half the payload, the dtype named in the metadata, upper halves of the f32 bits.
  const auto bytes = file_bytes(file);
  uint64_t meta, payload;
  std::memcpy(&meta, bytes.data() + 16, 8);
  std::memcpy(&payload, bytes.data() + 24, 8);
  EXPECT_EQ(payload, 2 * ck.parameters.size());
  EXPECT_NE(std::string(bytes.data() + 32, meta).find(R"({"count":)" + std::to_string(ck.parameters.size()) +
                                                       R"(,"dtype":"bf16","name":"params"})"),
            std::string::npos);
  uint16_t first;
  std::memcpy(&first, bytes.data() + 32 + meta, 2);
  EXPECT_EQ(first, bits_of(back.parameters[0]) >> 16);

  // Read and written again as bf16, the file keeps its bytes (the signalling NaN included).
  write_checkpoint(dir.path() / "again.ckpt", back);
  EXPECT_EQ(file_bytes(dir.path() / "again.ckpt"), bytes);
}

TEST(CheckpointBf16, F32ToBf16ToF32KeepsTheRoundedValues) {
  test::TempDir dir;
  Checkpoint ck = model_file_checkpoint({});
  write_checkpoint(dir.path() / "a.ckpt", ck);
  Checkpoint a = read_checkpoint(dir.path() / "a.ckpt");
  EXPECT_EQ(a.param_dtype, ParamDtype::F32);
  EXPECT_EQ(0, std::memcmp(a.parameters.data(), ck.parameters.data(), ck.parameters.size() * 4));
  a.param_dtype = ParamDtype::BF16;
  write_checkpoint(dir.path() / "b.ckpt", a);
  Checkpoint b = read_checkpoint(dir.path() / "b.ckpt");
  b.param_dtype = ParamDtype::F32;
  write_checkpoint(dir.path() / "c.ckpt", b);
  const Checkpoint c = read_checkpoint(dir.path() / "c.ckpt");
  EXPECT_EQ(c.param_dtype, ParamDtype::F32);
  size_t changed = 0;
  for (size_t i = 0; i < ck.parameters.size(); ++i) {
    ASSERT_EQ(bits_of(c.parameters[i]), bits_of(bf16_reference(ck.parameters[i]))) << i;
    changed += c.parameters[i] != ck.parameters[i];
  }
  EXPECT_GT(changed, ck.parameters.size() / 2) << "random normals are almost never bf16 values";
  EXPECT_EQ(c.state, ck.state);
  EXPECT_LT(fs::file_size(dir.path() / "b.ckpt"), fs::file_size(dir.path() / "a.ckpt") * 6 / 10);
}

// A checkpoint's bytes with new metadata and payload, the header's sizes and the checksum made to
// agree, so that the reader gets past them to the check under test.
std::vector<char> rewritten(const std::vector<char>& bytes, const std::function<void(nlohmann::json&)>& edit,
                            const std::function<void(std::string&)>& edit_payload = nullptr) {
  uint64_t meta_bytes, payload_bytes;
  std::memcpy(&meta_bytes, bytes.data() + 16, 8);
  std::memcpy(&payload_bytes, bytes.data() + 24, 8);
  nlohmann::json meta = nlohmann::json::parse(std::string(bytes.data() + 32, meta_bytes));
  std::string payload(bytes.data() + 32 + meta_bytes, payload_bytes);
  edit(meta);
  if (edit_payload) edit_payload(payload);
  const std::string text = meta.dump();
  std::string out(bytes.data(), 32);
  const uint64_t m = text.size(), p = payload.size();
  std::memcpy(out.data() + 16, &m, 8);
  std::memcpy(out.data() + 24, &p, 8);
  out += text;
  out += payload;
  const uint64_t digest = hash64(out.data(), out.size());
  out.append(reinterpret_cast<const char*>(&digest), 8);
  return {out.begin(), out.end()};
}

TEST(CheckpointBf16, RefusesOptimizerStateUnknownDtypesAndSizesThatDisagree) {
  test::TempDir dir;
  // The writer: a run to resume keeps its exact weights beside AdamW's state.
  Checkpoint run = sample_checkpoint();
  run.param_dtype = ParamDtype::BF16;
  const fs::path refused = dir.path() / "run.ckpt";
  std::string e = user_error_of([&] { write_checkpoint(refused, run); });
  EXPECT_NE(e.find("run.ckpt"), std::string::npos) << e;
  EXPECT_NE(e.find("without optimizer state"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(refused));

  const fs::path model = dir.path() / "model.ckpt", run_file = dir.path() / "run_f32.ckpt";
  Checkpoint m = model_file_checkpoint({});
  m.param_dtype = ParamDtype::BF16;
  write_checkpoint(model, m);
  write_checkpoint(run_file, sample_checkpoint());
  const auto model_bytes = file_bytes(model), run_bytes = file_bytes(run_file);
  ASSERT_NO_THROW(read_checkpoint(model));
  const size_t n = m.parameters.size();
  const fs::path bad = dir.path() / "bad.ckpt";
  auto refusal = [&](const std::vector<char>& bytes) {
    write_bytes(bad, bytes);
    const std::string what = user_error_of([&] { read_checkpoint(bad); });
    EXPECT_NE(what.find("bad.ckpt"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    return what;
  };
  auto set_dtype = [](int array, const char* dtype) {
    return [=](nlohmann::json& j) { j["arrays"][array]["dtype"] = dtype; };
  };
  // Unknown dtypes, or none.
  e = refusal(rewritten(model_bytes, set_dtype(0, "f16")));
  EXPECT_NE(e.find("unknown dtype \"f16\""), std::string::npos) << e;
  e = refusal(rewritten(model_bytes, set_dtype(0, "bf16\nf32")));  // still one line
  EXPECT_NE(e.find("unknown dtype \"bf16\\nf32\""), std::string::npos) << e;
  e = refusal(rewritten(model_bytes, [](nlohmann::json& j) { j["arrays"][0].erase("dtype"); }));
  EXPECT_NE(e.find("malformed"), std::string::npos) << e;
  // Sizes that disagree with the dtypes: bf16 bytes called f32 (too few), f32 bytes called bf16
  // (twice too many), a payload with bytes no array accounts for.
  e = refusal(rewritten(model_bytes, set_dtype(0, "f32")));
  EXPECT_NE(e.find("runs past the payload"), std::string::npos) << e;
  e = refusal(rewritten(run_bytes, [](nlohmann::json& j) { j["arrays"] = nlohmann::json::array({j["arrays"][0]}); j["arrays"][0]["dtype"] = "bf16"; },
                        [&](std::string& p) { p.resize(n * 4); }));
  EXPECT_NE(e.find(str_cat("the payload holds ", n * 4, " bytes but its arrays' counts and dtypes account for ", n * 2)),
            std::string::npos)
      << e;
  e = refusal(rewritten(model_bytes, [](nlohmann::json&) {}, [](std::string& p) { p += "xy"; }));
  EXPECT_NE(e.find("account for"), std::string::npos) << e;
  // bf16 parameters with optimizer state, and bf16 optimizer state.
  auto params_to_bf16 = [&](std::string& p) {
    std::string half;
    for (size_t i = 0; i < n; ++i) half.append(p.data() + 4 * i + 2, 2);
    p = half + p.substr(4 * n);
  };
  e = refusal(rewritten(run_bytes, set_dtype(0, "bf16"), params_to_bf16));
  EXPECT_NE(e.find("bf16 parameters with optimizer state"), std::string::npos) << e;
  e = refusal(rewritten(run_bytes, set_dtype(1, "bf16"), [&](std::string& p) { p.resize(p.size() - 2 * n); }));
  EXPECT_NE(e.find("'adam_m' is bf16"), std::string::npos) << e;
  // An array twice: the second would silently replace the first.
  e = refusal(rewritten(model_bytes, [](nlohmann::json& j) { j["arrays"].push_back(j["arrays"][0]); },
                        [](std::string& p) { p += p; }));
  EXPECT_NE(e.find("'params' appears twice"), std::string::npos) << e;
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
