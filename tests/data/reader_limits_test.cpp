// tests/data/reader_limits_test.cpp — the inputs the fuzz targets (tests/fuzz) found or that their
// properties demanded, each refused with one UserError (or read correctly) by the reader it broke:
// a crash, a hang, an exception of the wrong kind, a gigabyte allocation or a silently wrong value
// before the fix. The minimized fuzz inputs themselves are replayed by scripts/fuzz.sh.
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/checkpoint/checkpoint.h"
#include "engine/checkpoint/hash64.h"
#include "base/error.h"
#include "engine/train/run_config.h"
#include "tests/support/support.h"
#include "tools/convert/model_file.h"
#include "tools/plot/loss_plot.h"
#include "tools/tasks/conll.h"
#include "tools/tasks/imdb.h"
#include "tools/translate/verses.h"

namespace ferry {
namespace {

namespace fs = std::filesystem;

void write_text(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

template <typename F>
std::string user_error_of(F&& f) {
  try {
    f();
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

TEST(ReaderLimits, TomlThatToml3_3AssertsOnOrMisreadsIsAParseError) {
  // toml++ 3.3 asserted (abort) on a table header that opens with a character no key starts with,
  // and reached __builtin_unreachable on non-ASCII where it looks for whitespace.
  EXPECT_NE(user_error_of([] { parse_run_config("[$at", "a.toml"); }).find("a.toml"), std::string::npos);
  EXPECT_NE(user_error_of([] { parse_run_config("[train]\n\xc3\xa9 = 2\n", "b.toml"); }).find("b.toml:2:1"),
            std::string::npos);
  EXPECT_NE(user_error_of([] { parse_run_config("\xef\xbb\xaf", "c.toml"); }).find("non-ASCII"), std::string::npos);
  // Non-ASCII inside strings and comments stays fine.
  const RunConfig c = parse_run_config("# caf\xc3\xa9\n[train]\nsample_prompt = \"caf\xc3\xa9\" # \xc3\xa9\n", "ok.toml");
  EXPECT_EQ(c.train.sample_prompt, "caf\xc3\xa9");
  const RunConfig m = parse_run_config("[train]\nsample_prompt = \"\"\"a \\\n   b\xc3\xa9\"\"\"\n", "ml.toml");
  EXPECT_EQ(m.train.sample_prompt, "a b\xc3\xa9");
  // toml++ never sees non-ASCII: on `-"Θ` its lexer looked for whitespace inside what TOML calls a
  // string (undefined behaviour, run_config_fuzz); now a parse error like any other.
  EXPECT_NE(user_error_of([] { parse_run_config("_=-\"\xce\x98", "d.toml"); }).find("d.toml"), std::string::npos);
  EXPECT_NE(user_error_of([] { parse_run_config("# \xce\n", "e.toml"); }).find("malformed UTF-8"), std::string::npos);
  EXPECT_NE(user_error_of([] { parse_run_config("a = \"\\\xc3\xa9\"", "f.toml"); }).find("backslash"),
            std::string::npos);
  // Literal strings keep their value: non-ASCII, backslashes and quotes.
  const RunConfig l = parse_run_config("[train]\nsample_prompt = '\\\"\xce\x98\\n'\n", "l.toml");
  EXPECT_EQ(l.train.sample_prompt, "\\\"\xce\x98\\n");
  const RunConfig ml = parse_run_config("[train]\nsample_prompt = \'\'\'\n\xf0\x9f\x98\x80 \"x\"\\\'\'\'\'\n", "ml2.toml");
  EXPECT_EQ(ml.train.sample_prompt, "\xf0\x9f\x98\x80 \"x\"\\\'");
}

TEST(ReaderLimits, LlmcHeaderClaimingBillionsOfLayersIsRefusedAtOnce) {
  test::TempDir dir;
  int32_t header[256] = {20240326, 3, 4, 8, 705953792, 2, 4, 128};
  std::string bytes(reinterpret_cast<const char*>(header), sizeof header);
  bytes += std::string(600, '\0');
  write_text(dir.path() / "m.bin", bytes);
  const auto t0 = std::chrono::steady_clock::now();
  const std::string e = user_error_of([&] { convert::read_llmc(dir.path() / "m.bin"); });
  EXPECT_NE(e.find("header describes"), std::string::npos) << e;
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 1.0);
  // A vocabulary near INT32_MAX no longer overflows the padding arithmetic.
  header[3] = 2147483647;
  header[7] = 0;
  write_text(dir.path() / "v.bin", std::string(reinterpret_cast<const char*>(header), sizeof header));
  EXPECT_NE(user_error_of([&] { convert::read_llmc(dir.path() / "v.bin"); }).find("padded vocab"), std::string::npos);
}

std::string safetensors(const nlohmann::json& header, size_t data_bytes) {
  const std::string text = header.dump();
  const uint64_t n = text.size();
  return std::string(reinterpret_cast<const char*>(&n), 8) + text + std::string(data_bytes, '\0');
}

TEST(ReaderLimits, SafetensorsHeadersOfTheWrongShapeOrSizeAreUserErrors) {
  test::TempDir dir;
  const fs::path f = dir.path() / "m.safetensors";
  // An entry without data_offsets (was nlohmann's out_of_range escaping).
  write_text(f, safetensors({{"__metadata__", {{"n_head", "1"}}},
                             {"wte.weight", {{"dtype", "F32"}, {"shape", {2, 1}}}},
                             {"wpe.weight", {{"dtype", "F32"}, {"shape", {1, 1}}}}},
                            64));
  EXPECT_NE(user_error_of([&] { convert::read_safetensors(f); }), "");
  // A shape that is no list of integers, and an n_head that is no integer.
  write_text(f, safetensors({{"wte.weight", {{"shape", "big"}}}, {"wpe.weight", {{"shape", {1, 1}}}}}, 0));
  EXPECT_NE(user_error_of([&] { convert::read_safetensors(f, 1); }).find("malformed"), std::string::npos);
  write_text(f, safetensors({{"__metadata__", {{"n_head", "twelve"}}},
                             {"wte.weight", {{"shape", {2, 4}}}}, {"wpe.weight", {{"shape", {1, 4}}}}},
                            0));
  EXPECT_NE(user_error_of([&] { convert::read_safetensors(f); }).find("n_head"), std::string::npos);
  // GPT-2 1.5B's shapes in a few hundred bytes: refused before the 6 GB model is allocated.
  nlohmann::json big = {{"wte.weight", {{"dtype", "F32"}, {"shape", {50257, 1600}}, {"data_offsets", {0, 8}}}},
                        {"wpe.weight", {{"dtype", "F32"}, {"shape", {1024, 1600}}, {"data_offsets", {0, 8}}}}};
  for (int l = 0; l < 48; ++l) big["h." + std::to_string(l) + ".ln_1.weight"] = {{"shape", {1600}}};
  write_text(f, safetensors(big, 8));
  EXPECT_NE(user_error_of([&] { convert::read_safetensors(f, 25); }).find("need more data"), std::string::npos);
}

TEST(ReaderLimits, CheckpointTableEntriesThatWrapPast2To64AreRefused) {
  test::TempDir dir;
  Checkpoint ck;
  ck.model = gpt_preset("nano");
  ck.params = {{"a", 0, 4}, {"b", ~uint64_t{0}, 1}};  // offset + numel wraps to 0
  ck.parameters.assign(4, 1.0f);
  write_checkpoint(dir.path() / "c.ckpt", ck);  // the writer trusts its caller; the reader must not
  EXPECT_NE(user_error_of([&] { read_checkpoint(dir.path() / "c.ckpt"); }).find("lies outside"), std::string::npos);
}

TEST(ReaderLimits, ConllTagWithAStrayCarriageReturnIsRefused) {
  EXPECT_NE(user_error_of([] { tasks::parse_conll("\tB-\r\r\n", "f.conll"); }).find("f.conll:1"), std::string::npos);
  EXPECT_EQ(tasks::parse_conll("word\tB-loc\r\n", "ok.conll").at(0).tags.at(0), "B-loc");
}

TEST(ReaderLimits, ImdbLabelThatWrapsToZeroIsRefused) {
  test::TempDir dir;
  write_text(dir.path() / "r.json", R"([{"t": "fine", "s": 4294967296}])");
  EXPECT_NE(user_error_of([&] { tasks::read_imdb_reviews(dir.path() / "r.json"); }).find("label"), std::string::npos);
}

TEST(ReaderLimits, VerseKeyWithAHugeNumberIsTextNotACrash) {
  std::istringstream in("Genesis 99999999999:1: text\nGenesis 1:1: In the beginning.\n");
  const auto verses = translate::parse_diatheke_plain(in);
  ASSERT_EQ(verses.size(), 1u);
  EXPECT_EQ(verses.begin()->second, "In the beginning.");
}

TEST(ReaderLimits, PlotOfStepsTooCloseForTheirMagnitudeFinishes) {
  // Steps 1e17 and 1e17+16: the tick step is below half an ulp, and `v += step` never moved.
  plot::Series s{"train", "#000", {{1e17, 1.0}, {1e17 + 16, 2.0}}};
  const std::string svg = plot::loss_curve_svg({s}, "t");
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
}

}  // namespace
}  // namespace ferry
