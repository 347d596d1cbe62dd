// tests/data/prepare_test.cpp — `ferry data prepare` on a small fixture asset folder made here (no
// network): every document lands in exactly one split, behind an <|endoftext|>, encoded as the
// tokenizer encodes it; re-running is a no-op until an input or option changes; and the text rules
// (sections, CRLF, Latin-1, IMDB breaks, the IMDB pretraining pool) hold on their own.
#include "tools/data/prepare_corpus.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "engine/data/loader.h"
#include "engine/data/shard.h"
#include "tests/support/support.h"
#include "tools/data/corpus_sources.h"
#include "tools/data/fingerprint.h"
#include "tools/data/imdb_pretrain.h"
#include "tools/tokenizer/gpt2_tokenizer.h"

namespace ferry::data {
namespace {

namespace fs = std::filesystem;
using tokenizer::Gpt2Tokenizer;

void write_text(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << s;
}

std::string read_text(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

// --- text rules ---------------------------------------------------------------------------------

TEST(CorpusText, SectionsTileTheBookAndEndAtParagraphBreaks) {
  std::string book;
  for (int i = 0; i < 300; ++i) book += "Paragraph " + std::to_string(i) + " says something about the sea.\nA second line.\n\n";
  const auto sections = split_into_sections(book, 2000);
  ASSERT_GT(sections.size(), 4u);
  std::string joined;
  for (size_t i = 0; i < sections.size(); ++i) {
    joined += sections[i];
    if (i + 1 < sections.size()) {
      EXPECT_GE(sections[i].size(), 2000u);
      EXPECT_TRUE(sections[i].ends_with("\n\n")) << i;
      EXPECT_TRUE(sections[i + 1].starts_with("Paragraph ")) << i;
    }
  }
  EXPECT_EQ(joined, book);
  EXPECT_EQ(split_into_sections("short", 2000), std::vector<std::string_view>{"short"});
  EXPECT_TRUE(split_into_sections("", 2000).empty());
}

TEST(CorpusText, NormalisesCrlfAndReadsNonUtf8AsLatin1) {
  EXPECT_EQ(normalise_text("one\r\ntwo\r\n"), "one\ntwo\n");
  EXPECT_EQ(normalise_text("lone\rcarriage"), "lone\rcarriage");
  EXPECT_EQ(normalise_text("caf\xe9 \xbb"), "caf\xc3\xa9 \xc2\xbb");             // Latin-1 é » → UTF-8
  EXPECT_EQ(normalise_text("caf\xc3\xa9 \xf0\x9f\x98\x80"), "caf\xc3\xa9 \xf0\x9f\x98\x80");  // UTF-8 kept
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("\xe2\x82\xac"));
  EXPECT_FALSE(is_valid_utf8("\xe2\x82"));          // cut short
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // a surrogate
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
}

TEST(CorpusText, ImdbLineBreaksBecomeNewlines) {
  EXPECT_EQ(clean_imdb_review("Good.<br /><br />Really good.<br />"), "Good.\n\nReally good.\n");
  EXPECT_EQ(clean_imdb_review("a <br> b"), "a <br> b");
}

TEST(ImdbPool, HoldsAboutHalfDecidedByTheTextAlone) {
  std::mt19937_64 rng(test::test_seed());
  std::vector<std::string> reviews;
  for (int i = 0; i < 4000; ++i) reviews.push_back("review " + std::to_string(rng()) + " of a film");
  const auto ids = imdb_pretrain_ids(reviews);
  EXPECT_GT(ids.size(), 1800u);
  EXPECT_LT(ids.size(), 2200u);
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  for (size_t i = 0, k = 0; i < reviews.size(); ++i) {
    const bool listed = k < ids.size() && ids[k] == i;
    EXPECT_EQ(listed, imdb_review_in_pretrain_pool(reviews[i]));
    if (listed) ++k;
  }
  // Duplicates (and copies differing only in whitespace) fall on the same side.
  for (int i = 0; i < 200; ++i) {
    const std::string& r = reviews[i];
    EXPECT_EQ(imdb_review_in_pretrain_pool(r), imdb_review_in_pretrain_pool("  " + r + "\n"));
    std::string spaced = r;
    std::replace(spaced.begin(), spaced.end(), ' ', '\t');
    EXPECT_EQ(imdb_review_in_pretrain_pool(r), imdb_review_in_pretrain_pool(spaced));
  }
}

TEST(Fingerprint, FileEqualsContentsAndEveryByteCounts) {
  test::TempDir dir;
  std::mt19937_64 rng(test::test_seed());
  for (const size_t n : {size_t{0}, size_t{7}, size_t{8}, size_t{9}, size_t{1} << 20, (size_t{1} << 20) + 3}) {
    std::string bytes(n, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng());
    write_text(dir.path() / "f", bytes);
    EXPECT_EQ(fingerprint_file(dir.path() / "f"), fingerprint(bytes)) << n;
    if (n > 0) {
      std::string flipped = bytes;
      flipped[rng() % n] ^= 1;
      EXPECT_NE(fingerprint(flipped), fingerprint(bytes)) << n;
    }
  }
  EXPECT_NE(fingerprint("a"), fingerprint(std::string("a\0", 2)));  // the length counts
  EXPECT_NE(fingerprint("abc", 1), fingerprint("abc", 2));
}

// --- the command on a fixture asset folder --------------------------------------------------------

class Prepare : public ::testing::Test {
 protected:
  void SetUp() override {
    vocab_ = Gpt2Tokenizer::default_dir();
    if (!fs::exists(vocab_ / "encoder.json") || !fs::exists(vocab_ / "vocab.bpe")) {
      GTEST_SKIP() << "GPT-2 vocabulary not fetched (" << vocab_ << "); run scripts/fetch_assets.sh";
    }
    tokenizer_ = std::make_unique<Gpt2Tokenizer>(Gpt2Tokenizer::load(vocab_));
    const fs::path a = assets_.path();
    // A CRLF book long enough for several sections, and a Latin-1 one.
    std::string book;
    for (int i = 0; i < 700; ++i) {
      book += "Chapter " + std::to_string(i / 50) + ", paragraph " + std::to_string(i) +
              ": the whale was seen again off the starboard bow.\r\nAll hands on deck!\r\n\r\n";
    }
    write_text(a / "gutenberg/gutenberg/melville-test.txt", book);
    write_text(a / "gutenberg/gutenberg/latin-test.txt", "Caf\xe9 society in the \xabold\xbb town.\n");
    write_text(a / "gutenberg/gutenberg/README", "not a book");
    write_text(a / "sotu/data/1790_george_washington_n.txt", "Fellow-Citizens of the Senate: I embrace with great satisfaction...");
    write_text(a / "sotu/data/1791_george_washington_n.txt", "Fellow-Citizens: In vain may we expect peace with the Indians.");
    write_text(a / "sotu/data/1790_george_washington_n.json", R"({"text": "not read"})");
    nlohmann::json reviews = nlohmann::json::array();
    for (int i = 0; i < 60; ++i) {
      reviews.push_back({{"t", "Review " + std::to_string(i) + ": a fine film.<br /><br />I'd watch it again, " +
                                   std::string(i % 7, '!')},
                         {"s", i % 2}});
    }
    write_text(a / "imdb/reviews.json", reviews.dump());
  }

  // Every document the fixture should yield, normalised, as the pretraining corpus holds them.
  std::multiset<std::string> expected_documents() const {
    std::multiset<std::string> docs;
    const auto book = normalise_text(read_text(assets_.path() / "gutenberg/gutenberg/melville-test.txt"));
    for (auto s : split_into_sections(book, kBookSectionBytes)) docs.emplace(s);
    docs.insert("Caf\xc3\xa9 society in the \xc2\xabold\xc2\xbb town.\n");
    docs.insert("Fellow-Citizens of the Senate: I embrace with great satisfaction...");
    docs.insert("Fellow-Citizens: In vain may we expect peace with the Indians.");
    for (const auto& r : nlohmann::json::parse(read_text(assets_.path() / "imdb/reviews.json"))) {
      const auto text = r["t"].get<std::string>();
      if (imdb_review_in_pretrain_pool(text)) docs.insert(clean_imdb_review(text));
    }
    return docs;
  }

  test::CommandResult prepare(const fs::path& out, const std::string& extra = "") const {
    return test::run_command(test::ferry_binary() + " data prepare --assets " + assets_.path().string() +
                             " --vocab " + vocab_.string() + " --out " + out.string() + " " + extra);
  }

  // The documents of one split, in shard order: every one opens with <|endoftext|>.
  std::vector<std::vector<int32_t>> split_documents(const fs::path& out, const std::string& split) const {
    std::vector<std::vector<int32_t>> docs;
    for (const auto& shard : resolve_shards(out.string(), split)) {
      for (const uint16_t t : read_shard(shard, Gpt2Tokenizer::kVocabSize)) {
        if (t == Gpt2Tokenizer::kEndOfText) {
          docs.emplace_back();
        } else {
          EXPECT_FALSE(docs.empty()) << shard << " does not start with <|endoftext|>";
          if (!docs.empty()) docs.back().push_back(t);
        }
      }
    }
    return docs;
  }

  test::TempDir assets_, out_;
  fs::path vocab_;
  std::unique_ptr<Gpt2Tokenizer> tokenizer_;
};

TEST_F(Prepare, EveryDocumentLandsInExactlyOneSplitEncodedBehindEndOfText) {
  const fs::path out = out_.path() / "corpus";
  const auto r = prepare(out, "--val-fraction 0.3 --shard-tokens 700 --seed 7");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("corpus written to"), std::string::npos) << r.out;

  const auto train = split_documents(out, "train");
  const auto val = split_documents(out, "val");
  ASSERT_FALSE(train.empty());
  ASSERT_FALSE(val.empty());
  std::multiset<std::string> seen;
  for (const auto* split : {&train, &val}) {
    for (const auto& ids : *split) {
      const std::string text = tokenizer_->decode(ids);
      EXPECT_EQ(ids, tokenizer_->encode(text)) << "not the tokenizer's encoding: " << text.substr(0, 60);
      seen.insert(text);
    }
  }
  EXPECT_EQ(seen, expected_documents());
  // Shards are filled to --shard-tokens, the last of each split takes the rest.
  size_t shard_count = 0;
  for (const auto* split : {"train", "val"}) {
    const auto shards = resolve_shards(out.string(), split);
    shard_count += shards.size();
    for (size_t i = 0; i < shards.size(); ++i) {
      const size_t n = read_shard(shards[i], Gpt2Tokenizer::kVocabSize).size();
      if (i + 1 < shards.size()) {
        EXPECT_EQ(n, 700u) << shards[i];
      } else {
        EXPECT_LE(n, 700u) << shards[i];
      }
    }
  }
  EXPECT_GT(shard_count, 20u) << r.out;

  // The loader reads the result.
  LoaderOptions lo;
  lo.pattern = out.string();
  lo.split = "val";
  lo.B = 1;
  lo.T = 16;
  TokenLoader loader(lo);
  std::vector<int32_t> in(16), tg(16);
  loader.next_batch(in.data(), tg.data());
  EXPECT_EQ(in[0], Gpt2Tokenizer::kEndOfText);
}

TEST_F(Prepare, RerunIsANoOpUntilAnInputOrOptionChanges) {
  const fs::path out = out_.path() / "corpus";
  ASSERT_EQ(prepare(out, "--val-fraction 0.3 --shard-tokens 700").exit_code, 0);
  const auto shard = resolve_shards(out.string(), "train").front();
  const auto stamp = fs::last_write_time(shard);
  const auto bytes = read_text(shard);

  auto again = prepare(out, "--val-fraction 0.3 --shard-tokens 700");
  ASSERT_EQ(again.exit_code, 0) << again.out;
  EXPECT_NE(again.out.find("up to date"), std::string::npos) << again.out;
  EXPECT_EQ(fs::last_write_time(shard), stamp);

  // Another option: rebuilt.
  again = prepare(out, "--val-fraction 0.3 --shard-tokens 701");
  EXPECT_NE(again.out.find("corpus written to"), std::string::npos) << again.out;
  // An input's contents: rebuilt, and the new text is in.
  write_text(assets_.path() / "sotu/data/1791_george_washington_n.txt", "Fellow-Citizens: amended.");
  again = prepare(out, "--val-fraction 0.3 --shard-tokens 701");
  EXPECT_NE(again.out.find("corpus written to"), std::string::npos) << again.out;
  std::string all_text;
  for (const auto* split : {"train", "val"}) {
    for (const auto& ids : split_documents(out, split)) all_text += tokenizer_->decode(ids);
  }
  EXPECT_NE(all_text.find("Fellow-Citizens: amended."), std::string::npos);
  // A deleted shard: rebuilt.
  fs::remove(resolve_shards(out.string(), "train").back());
  again = prepare(out, "--val-fraction 0.3 --shard-tokens 701");
  EXPECT_NE(again.out.find("corpus written to"), std::string::npos) << again.out;
}

TEST_F(Prepare, SameSeedSameBytesAndFewerShardsLeaveNoStaleOnes) {
  const fs::path a = out_.path() / "a", b = out_.path() / "b";
  ASSERT_EQ(prepare(a, "--seed 11 --val-fraction 0.25 --shard-tokens 500").exit_code, 0);
  ASSERT_EQ(prepare(b, "--seed 11 --val-fraction 0.25 --shard-tokens 500").exit_code, 0);
  const auto shards_a = resolve_shards(a.string());
  const auto shards_b = resolve_shards(b.string());
  ASSERT_EQ(shards_a.size(), shards_b.size());
  for (size_t i = 0; i < shards_a.size(); ++i) EXPECT_EQ(read_text(shards_a[i]), read_text(shards_b[i])) << i;

  // Another seed: another split or order of the same documents.
  ASSERT_EQ(prepare(b, "--seed 12 --val-fraction 0.25 --shard-tokens 500").exit_code, 0);
  std::string concat_a, concat_b;
  for (const auto& s : resolve_shards(a.string())) concat_a += read_text(s);
  for (const auto& s : resolve_shards(b.string())) concat_b += read_text(s);
  EXPECT_NE(concat_a, concat_b);

  // One big shard per split now: the earlier, numerous ones are gone.
  ASSERT_EQ(prepare(b, "--seed 12 --val-fraction 0.25 --shard-tokens 1000000").exit_code, 0);
  EXPECT_EQ(resolve_shards(b.string(), "train").size(), 1u);
  EXPECT_EQ(resolve_shards(b.string(), "val").size(), 1u);
}

TEST_F(Prepare, SourcesCanBeLeftOut) {
  const fs::path out = out_.path() / "corpus";
  fs::remove_all(assets_.path() / "imdb");
  const auto missing = prepare(out);
  EXPECT_EQ(missing.exit_code, 2) << missing.out;
  EXPECT_NE(missing.out.find("imdb"), std::string::npos) << missing.out;
  EXPECT_NE(missing.out.find("fetch_assets.sh"), std::string::npos) << missing.out;
  EXPECT_EQ(std::count(missing.out.begin(), missing.out.end(), '\n'), 1) << missing.out;

  const auto r = prepare(out, "--sources gutenberg,sotu --val-fraction 0.2");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out.find("imdb"), std::string::npos) << r.out;
  size_t docs = 0;
  for (const auto* split : {"train", "val"}) docs += split_documents(out, split).size();
  EXPECT_EQ(docs, split_into_sections(normalise_text(read_text(assets_.path() / "gutenberg/gutenberg/melville-test.txt")),
                                      kBookSectionBytes)
                          .size() +
                      1 + 2);
}

TEST_F(Prepare, BadOptionsAreOneLineErrors) {
  const fs::path out = out_.path() / "corpus";
  for (const char* bad : {"--val-fraction 1.5", "--val-fraction -0.1", "--shard-tokens 0", "--sources gutenberg,nope",
                          "--sources sotu,sotu"}) {
    const auto r = prepare(out, bad);
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << bad << ": " << r.out;
  }
  EXPECT_FALSE(fs::exists(out / "manifest.json"));
}

}  // namespace
}  // namespace ferry::data
