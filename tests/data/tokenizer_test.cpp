// tests/data/tokenizer_test.cpp — the GPT-2 tokenizer gives tiktoken's ids on the committed vectors
// (tests/data/tokenizer_vectors.json, made by scripts/make_tokenizer_vectors.js), every byte string
// round-trips, bad vocabulary files and bad ids are one clear error, and `ferry tokenize` round-trips.
#include "tools/tokenizer/gpt2_tokenizer.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "base/error.h"
#include "tests/support/support.h"
#include "tools/tokenizer/pretokenize.h"

namespace ferry::tokenizer {
namespace {

namespace fs = std::filesystem;

std::string file_text(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void write_text(const fs::path& p, std::string_view text) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(text.data(), static_cast<std::streamsize>(text.size()));
}

struct Vector {
  std::string category;
  std::string text;
  std::vector<int32_t> ids;
};

std::vector<Vector> committed_vectors() {
  const fs::path path = test::source_dir() / "tests/data/tokenizer_vectors.json";
  const auto json = nlohmann::json::parse(file_text(path));
  std::vector<Vector> out;
  for (const auto& v : json.at("vectors")) {
    out.push_back({v.at("category"), v.at("text"), v.at("ids").get<std::vector<int32_t>>()});
  }
  return out;
}

std::string printable(std::string_view s) { return nlohmann::json(std::string(s)).dump(); }

// The vocabulary is an asset fetched at set-up, not part of the repository: without it the suite fails
// (it must not pass vacuously) and says how to get it.
class Gpt2TokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path dir = Gpt2Tokenizer::default_dir();
    if (!fs::exists(dir / "encoder.json") || !fs::exists(dir / "vocab.bpe")) {
      FAIL() << "GPT-2 vocabulary not found in " << dir << ": run scripts/fetch_assets.sh";
    }
    static const Gpt2Tokenizer loaded = Gpt2Tokenizer::load(dir);
    tok = &loaded;
  }
  const Gpt2Tokenizer* tok = nullptr;
};

TEST_F(Gpt2TokenizerTest, MatchesTiktokenOnEveryCommittedVector) {
  const auto vectors = committed_vectors();
  ASSERT_GE(vectors.size(), 200u);
  for (const auto& v : vectors) {
    EXPECT_EQ(tok->encode(v.text), v.ids) << v.category << ": " << printable(v.text);
  }
}

TEST_F(Gpt2TokenizerTest, DecodeRestoresTheBytesOfEveryCommittedVector) {
  for (const auto& v : committed_vectors()) {
    EXPECT_EQ(tok->decode(v.ids), v.text) << v.category << ": " << printable(v.text);
  }
}

// A merge limit stops GPT-2's BPE after its first N merges: with all 50,000 it is the full
// tokenizer; with none every id is a byte; in between the pieces are tokens of rank < N, text
// round-trips, and more merges never make an encoding longer (the N-merge state is a stage on the
// way to the (N+k)-merge one, since merges apply in rank order).
TEST_F(Gpt2TokenizerTest, MergeLimitStopsBpeAfterItsFirstMerges) {
  const auto vectors = committed_vectors();
  const Gpt2Tokenizer all = tok->with_merge_limit(50000), none = tok->with_merge_limit(0),
                      some = tok->with_merge_limit(3837), more = tok->with_merge_limit(12000);
  int kept = 0;
  for (int32_t id = 0; id < Gpt2Tokenizer::kVocabSize; ++id) kept += some.has_token(id);
  EXPECT_EQ(kept, 256 + 3837);
  EXPECT_FALSE(some.has_token(Gpt2Tokenizer::kEndOfText));
  size_t shorter = 0;
  for (const auto& v : vectors) {
    EXPECT_EQ(all.encode(v.text), v.ids) << printable(v.text);
    const auto bytes = none.encode(v.text);
    EXPECT_EQ(bytes.size(), v.text.size()) << printable(v.text);
    EXPECT_EQ(none.decode(bytes), v.text);
    const auto ids = some.encode(v.text), ids_more = more.encode(v.text);
    EXPECT_EQ(some.decode(ids), v.text) << printable(v.text);
    for (int32_t id : ids) EXPECT_TRUE(some.has_token(id)) << id << " in " << printable(v.text);
    EXPECT_GE(ids.size(), ids_more.size()) << printable(v.text);
    EXPECT_GE(ids_more.size(), v.ids.size()) << printable(v.text);
    shorter += ids_more.size() < ids.size();
  }
  EXPECT_GT(shorter, 20u);  // the limits differ on real text
  // Ordinary English stays mostly whole words at 3,837 merges; a rare name splits into pieces.
  EXPECT_EQ(some.encode(" the movie was great").size(), 4u);
  EXPECT_GT(some.encode(" Schwarzenegger").size(), tok->encode(" Schwarzenegger").size());
  EXPECT_THROW(tok->with_merge_limit(-1), UserError);
}

TEST_F(Gpt2TokenizerTest, EndOfTextInsideTextIsOrdinaryText) {
  const auto ids = tok->encode("a<|endoftext|>b");
  EXPECT_EQ(std::count(ids.begin(), ids.end(), Gpt2Tokenizer::kEndOfText), 0);
  EXPECT_EQ(tok->decode(ids), "a<|endoftext|>b");
  const int32_t eot[] = {Gpt2Tokenizer::kEndOfText};
  EXPECT_EQ(tok->decode(eot), "<|endoftext|>");
}

TEST_F(Gpt2TokenizerTest, InvalidUtf8RoundTripsByteForByte) {
  const std::vector<std::string> invalid = {
      "\x80",                 // lone continuation byte
      "\xC0\x80",             // overlong NUL
      "\xE0\x80\xAF",         // overlong '/'
      "\xED\xA0\x80",         // UTF-16 surrogate encoded in UTF-8
      "\xF4\x90\x80\x80",     // past U+10FFFF
      "\xF5\xFF\xFE",         // bytes that never occur in UTF-8
      "\xE2\x82",             // truncated euro sign
      "abc\xE2\x82",          // truncated at the end of text
      "caf\xE9 au lait",      // Latin-1 in a UTF-8 stream
      " \xFF\xFFword's \x80\x80 123\xC3",
  };
  for (const auto& s : invalid) EXPECT_EQ(tok->decode(tok->encode(s)), s) << printable(s);

  std::mt19937_64 rng(test::test_seed());
  for (int trial = 0; trial < 300; ++trial) {
    std::string s(rng() % 200, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    ASSERT_EQ(tok->decode(tok->encode(s)), s) << "seed " << test::test_seed() << " trial " << trial;
  }
}

TEST_F(Gpt2TokenizerTest, InvalidByteBecomesItsOneByteToken) {
  // Invalid bytes never merge with a following letter (they are not \p{L}): '\xFF' stays a token of
  // its own, whose bytes are exactly that byte.
  const auto ids = tok->encode("\xFF" "abc");
  ASSERT_GE(ids.size(), 2u);
  EXPECT_EQ(tok->token_bytes(ids[0]), "\xFF");
  EXPECT_EQ(tok->decode(std::span(ids).subspan(1)), "abc");
}

TEST_F(Gpt2TokenizerTest, VeryLongPieceEncodesAndRoundTrips) {
  // One piece of 200k letters takes the heap path of byte_pair_merge; a quadratic merge would take
  // minutes here. The result must still decode to the input, and merges must have happened (uniform
  // random letters come to about 1.7 bytes per token).
  std::string word;
  std::mt19937_64 rng(test::test_seed());
  for (int i = 0; i < 200000; ++i) word.push_back(static_cast<char>('a' + rng() % 26));
  const auto ids = tok->encode(word);
  EXPECT_EQ(tok->decode(ids), word);
  EXPECT_LT(ids.size(), word.size() * 3 / 4);
}

TEST_F(Gpt2TokenizerTest, ConcurrentEncodersAgree) {
  const auto vectors = committed_vectors();
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round) {
        for (const auto& v : vectors) mismatches[t] += tok->encode(v.text) != v.ids;
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

TEST_F(Gpt2TokenizerTest, DecodeRejectsIdsOutsideTheVocabulary) {
  for (int32_t bad : {-1, Gpt2Tokenizer::kVocabSize, INT32_MAX}) {
    const int32_t ids[] = {15496, bad};
    try {
      (void)tok->decode(ids);
      ADD_FAILURE() << "id " << bad << " accepted";
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find(std::to_string(bad)), std::string::npos) << e.what();
    }
  }
}

TEST(Gpt2PieceSplitter, CutsWhereGpt2PatternMatches) {
  // Expected pieces worked out by hand from the pattern
  //   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  // (the committed vectors check the same rules end to end against tiktoken).
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"Hello  world's\n\n", {"Hello", " ", " world", "'s", "\n\n"}},
      {"I'M here", {"I", "'", "M", " here"}},  // contractions are lowercase only
      {"x 123abc!?", {"x", " 123", "abc", "!?"}},
      {"a\t\tb", {"a", "\t", "\t", "b"}},  // a run's last space goes with the next piece only if ' '
      {"end   ", {"end", "   "}},
      {"caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87", {"caf\xC3\xA9", " \xE4\xB8\xAD\xE6\x96\x87"}},
      {"don\xE2\x80\x99t", {"don", "\xE2\x80\x99", "t"}},  // U+2019 is punctuation, not an apostrophe
      {"\xFF" "a", {"\xFF", "a"}},
  };
  for (const auto& [text, expected] : cases) {
    std::vector<std::string> pieces;
    std::string_view piece;
    for (Gpt2PieceSplitter s(text); s.next(piece);) pieces.emplace_back(piece);
    EXPECT_EQ(pieces, expected) << printable(text);
  }
}

TEST(Gpt2PieceSplitter, PiecesConcatenateToAnyByteString) {
  std::mt19937_64 rng(test::test_seed());
  for (int trial = 0; trial < 500; ++trial) {
    std::string s(rng() % 100, '\0');
    for (auto& c : s) c = static_cast<char>(rng() % 4 == 0 ? " \t\n'"[rng() % 4] : rng());
    std::string joined;
    std::string_view piece;
    for (Gpt2PieceSplitter sp(s); sp.next(piece);) {
      ASSERT_FALSE(piece.empty());
      joined += piece;
    }
    ASSERT_EQ(joined, s) << "seed " << test::test_seed() << " trial " << trial;
  }
}

TEST(Gpt2TokenizerLoad, MissingFolderIsAUserErrorNamingIt) {
  test::TempDir tmp;
  const fs::path missing = tmp.path() / "no-such-vocabulary";
  try {
    (void)Gpt2Tokenizer::load(missing);
    FAIL() << "loaded from a missing folder";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find(missing.string()), std::string::npos) << e.what();
  }
}

// Each broken file is named in the error. Needs the real files as a starting point.
TEST(Gpt2TokenizerLoad, BrokenFilesAreUserErrorsNamingTheFile) {
  const fs::path real = Gpt2Tokenizer::default_dir();
  if (!fs::exists(real / "encoder.json")) FAIL() << "GPT-2 vocabulary not found in " << real << ": run scripts/fetch_assets.sh";
  const std::string encoder = file_text(real / "encoder.json");
  const std::string merges = file_text(real / "vocab.bpe");
  struct Case {
    const char* what;
    std::string encoder;  // empty: file absent
    std::string merges;
    const char* named;
  };
  const std::vector<Case> cases = {
      {"encoder.json absent", "", merges, "encoder.json"},
      {"encoder.json not JSON", "{\"a\": 1,", merges, "encoder.json"},
      {"encoder.json too small", "{\"a\": 0}", merges, "encoder.json"},
      {"vocab.bpe absent", encoder, "", "vocab.bpe"},
      {"vocab.bpe line without a pair", encoder, "#version: 0.2\n\xC4\xA0t\nnope\n", "vocab.bpe:2"},
      {"vocab.bpe merge of unknown tokens", encoder, "#version: 0.2\nzzzzzzzz qqqqqqq\n", "vocab.bpe:2"},
      {"vocab.bpe missing most merges", encoder, "#version: 0.2\n\xC4\xA0 t\n", "vocab.bpe"},
  };
  for (const auto& c : cases) {
    test::TempDir tmp;
    if (!c.encoder.empty()) write_text(tmp.path() / "encoder.json", c.encoder);
    if (!c.merges.empty()) write_text(tmp.path() / "vocab.bpe", c.merges);
    try {
      (void)Gpt2Tokenizer::load(tmp.path());
      ADD_FAILURE() << c.what << ": loaded";
    } catch (const UserError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(c.named), std::string::npos) << c.what << ": " << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << c.what << ": not one line: " << msg;
    }
  }
}

TEST_F(Gpt2TokenizerTest, CommandLineEncodesAndDecodesBack) {
  test::TempDir tmp;
  const std::string text = "Héllo, wörld! It's 2024 — 中文 😀\n\ttabs  and trailing   \n";
  write_text(tmp.path() / "in.txt", text);
  const auto in = tmp.path() / "in.txt", ids = tmp.path() / "ids.txt", out = tmp.path() / "out.txt";
  const auto enc = test::run_command(test::ferry_binary() + " tokenize < " + in.string() + " > " + ids.string());
  ASSERT_EQ(enc.exit_code, 0) << enc.out;

  // One line of space-separated ids, the same the library gives.
  std::string expected_line;
  for (const int32_t id : tok->encode(text)) expected_line += (expected_line.empty() ? "" : " ") + std::to_string(id);
  EXPECT_EQ(file_text(ids), expected_line + "\n");

  const auto dec = test::run_command(test::ferry_binary() + " tokenize --decode < " + ids.string() + " > " + out.string());
  ASSERT_EQ(dec.exit_code, 0) << dec.out;
  EXPECT_EQ(file_text(out), text);
}

TEST_F(Gpt2TokenizerTest, CommandLineRejectsBadIdsWithOneLine) {
  test::TempDir tmp;
  for (const char* bad : {"15496 50257", "15496 -3", "15496 hello", "1.5"}) {
    write_text(tmp.path() / "ids.txt", bad);
    const auto r = test::run_command(test::ferry_binary() + " tokenize --decode < " + (tmp.path() / "ids.txt").string());
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << bad << ": " << r.out;
    EXPECT_NE(r.out.find("token id"), std::string::npos) << bad << ": " << r.out;
  }
}

}  // namespace
}  // namespace ferry::tokenizer
