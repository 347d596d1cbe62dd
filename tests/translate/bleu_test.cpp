// tests/translate/bleu_test.cpp — corpus BLEU and 13a tokenization against hand-derived values
// (each derivation in the comment beside it), and against sacreBLEU's own scores when
// tests/translate/bleu_vectors.json exists (written by scripts/make_bleu_vectors.py where sacrebleu
// is installed).
#include <cmath>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "tests/support/support.h"
#include "tools/translate/bleu.h"

namespace ferry::translate {
namespace {

TEST(Tokenize13a, SplitsPunctuationAndSymbolsButNotApostrophesOrInnerHyphens) {
  // '!' is in the first class; ',' after a letter is split by the second regex.
  EXPECT_EQ(tokenize_13a("Hello, world!"), "Hello , world !");
  // ' and - between letters are in no class.
  EXPECT_EQ(tokenize_13a("don't be well-known"), "don't be well-known");
  EXPECT_EQ(tokenize_13a("(a) [b] {c} x/y @home #1 50% a+b=c"), "( a ) [ b ] { c } x / y @ home # 1 50 % a + b = c");
  EXPECT_EQ(tokenize_13a("  many   spaces\tand\ttabs  "), "many spaces and tabs");
}

TEST(Tokenize13a, NumbersKeepInnerPeriodsAndCommasButSplitTrailingOnes) {
  // "1,000.50": every , and . sits between digits: neither regex 2 (needs a non-digit before) nor
  // regex 3 (needs a non-digit after) fires. "dollars." → regex 2 splits "s.".
  EXPECT_EQ(tokenize_13a("It costs 1,000.50 dollars."), "It costs 1,000.50 dollars .");
  // "3.5," → the comma follows a digit (regex 2 no) but precedes a space (regex 3 yes);
  // "3." at the end: regex 3 (". " follows).
  EXPECT_EQ(tokenize_13a("3.5, not 3."), "3.5 , not 3 .");
  // "x.5": a non-digit before the period (regex 2) splits it even though a digit follows;
  // "5.x": a non-digit after (regex 3).
  EXPECT_EQ(tokenize_13a("x.5 5.x"), "x . 5 5 . x");
}

TEST(Tokenize13a, DashAfterDigitIsSplitOnlyThere) {
  // Regex 4: a '-' preceded by a digit; "-3" and "a-b" stay.
  EXPECT_EQ(tokenize_13a("pages 10-20, -3 and a-b"), "pages 10 - 20 , -3 and a-b");
}

TEST(Tokenize13a, UnescapesEntitiesAndJoinsHyphenatedLineBreaks) {
  EXPECT_EQ(tokenize_13a("&quot;Hi&quot; &amp; bye &lt;3&gt;"), "\" Hi \" & bye < 3 >");
  EXPECT_EQ(tokenize_13a("con-\ntinued\nline<skipped>"), "continued line");
}

TEST(Tokenize13a, LeavesNonAsciiCharactersWholeAndSplitsTheirPunctuation) {
  // ¿ « » are not ASCII: no class holds them. ':' is split (first class), "». " by regex 2.
  EXPECT_EQ(tokenize_13a("¿Qué es esto? Él dijo: «sí»."), "¿Qué es esto ? Él dijo : «sí» .");
  // U+00A0 (no-break space) and U+3000 are whitespace to Python's str.split.
  EXPECT_EQ(tokenize_13a("a\u00a0b\u3000c"), "a b c");
}

TEST(CorpusBleu, PerfectMatchIs100) {
  const auto b = corpus_bleu({"the cat sat on the mat ."}, {"the cat sat on the mat ."});
  EXPECT_DOUBLE_EQ(b.score, 100.0);
  EXPECT_DOUBLE_EQ(b.bp, 1.0);
}

TEST(CorpusBleu, NoMatchAtAllIsZero) {
  EXPECT_EQ(corpus_bleu({"alpha beta gamma delta"}, {"one two three four"}).score, 0.0);
}

TEST(CorpusBleu, NoFourGramMatchUsesExponentialSmoothing) {
  // hyp A B C D E, ref A B C X E (5 tokens each, BP 1):
  //   1-grams 4/5 (A B C E), 2-grams 2/4 (AB BC), 3-grams 1/3 (ABC), 4-grams 0/2
  //   'exp': the first order without a match gets 100 / (2 · total) = 100/4 = 25
  //   BLEU = (80 · 50 · 33.33… · 25)^(1/4)
  const auto b = corpus_bleu({"a b c d e"}, {"a b c x e"});
  EXPECT_NEAR(b.precisions[0], 80.0, 1e-12);
  EXPECT_NEAR(b.precisions[1], 50.0, 1e-12);
  EXPECT_NEAR(b.precisions[2], 100.0 / 3.0, 1e-12);
  EXPECT_NEAR(b.precisions[3], 25.0, 1e-12);
  EXPECT_NEAR(b.score, std::pow(80.0 * 50.0 * (100.0 / 3.0) * 25.0, 0.25), 1e-9);
  EXPECT_NEAR(b.score, 42.7287006396, 1e-6);
}

TEST(CorpusBleu, ClippedCountsAndSmoothingDoublesPerMissingOrder) {
  // hyp "the the the the", ref "the cat": 1-grams clipped to 1 of 4; 2-, 3-, 4-grams 0/3, 0/2, 0/1
  // → 100/(2·3), 100/(4·2), 100/(8·1); c = 4 ≥ r = 2, BP 1.
  const auto b = corpus_bleu({"the the the the"}, {"the cat"});
  EXPECT_NEAR(b.precisions[0], 25.0, 1e-12);
  EXPECT_NEAR(b.precisions[1], 100.0 / 6.0, 1e-12);
  EXPECT_NEAR(b.precisions[2], 12.5, 1e-12);
  EXPECT_NEAR(b.precisions[3], 12.5, 1e-12);
  EXPECT_NEAR(b.score, std::pow(25.0 * (100.0 / 6.0) * 12.5 * 12.5, 0.25), 1e-9);
}

TEST(CorpusBleu, BrevityPenaltyWhenShorter) {
  // hyp "the cat sat on" (c = 4) of ref "the cat sat on the mat" (r = 6): every n-gram matches,
  // BP = exp(1 − 6/4) = exp(−0.5).
  const auto b = corpus_bleu({"the cat sat on"}, {"the cat sat on the mat"});
  EXPECT_NEAR(b.bp, std::exp(-0.5), 1e-15);
  EXPECT_NEAR(b.score, 100.0 * std::exp(-0.5), 1e-9);
}

TEST(CorpusBleu, AnOrderWithoutHypothesisNgramsMakesTheScoreZero) {
  // hyp of 3 tokens has no 4-gram: sacreBLEU stops at total = 0, its precision stays 0 → BLEU 0
  // (without effective order), even though 1- to 3-grams all match.
  const auto b = corpus_bleu({"the cat sat"}, {"the cat sat on the mat"});
  EXPECT_EQ(b.score, 0.0);
  EXPECT_NEAR(b.precisions[0], 100.0, 1e-12);
}

TEST(CorpusBleu, StatisticsAreSummedOverTheCorpusNotAveraged) {
  // seg 1: "a b c d" perfect: correct 4,3,2,1 of 4,3,2,1. seg 2: "x y" vs "z w": 0,0 of 2,1.
  // corpus: 4/6, 3/4, 2/2, 1/1, c = r = 6 → (66.67 · 75 · 100 · 100)^(1/4).
  const auto b = corpus_bleu({"a b c d", "x y"}, {"a b c d", "z w"});
  EXPECT_EQ(b.stats.sys_len, 6);
  EXPECT_EQ(b.stats.ref_len, 6);
  EXPECT_NEAR(b.score, std::pow((400.0 / 6.0) * 75.0 * 100.0 * 100.0, 0.25), 1e-9);
  // tokenization happens before counting: "mat." and "mat ." are the same two tokens.
  EXPECT_DOUBLE_EQ(corpus_bleu({"the cat sat on the mat."}, {"the cat sat on the mat ."}).score, 100.0);
}

TEST(CorpusBleu, MismatchedCountsAreAUserError) {
  EXPECT_THROW(corpus_bleu({"a"}, {"a", "b"}), UserError);
}

// sacreBLEU's own numbers: every case in the vector file (if it has been generated).
TEST(CorpusBleu, MatchesSacrebleuVectors) {
  const std::filesystem::path file = std::filesystem::path(test::source_dir()) / "tests/translate/bleu_vectors.json";
  if (!std::filesystem::exists(file)) GTEST_SKIP() << file << " not generated yet (scripts/make_bleu_vectors.py)";
  std::ifstream in(file);
  const auto j = nlohmann::json::parse(in);
  ASSERT_FALSE(j.at("tokenize").empty());
  for (const auto& t : j.at("tokenize")) {
    EXPECT_EQ(tokenize_13a(t.at("input").get<std::string>()), t.at("output").get<std::string>())
        << "input: " << t.at("input");
  }
  ASSERT_FALSE(j.at("corpora").empty());
  for (const auto& c : j.at("corpora")) {
    const auto b = corpus_bleu(c.at("hypotheses").get<std::vector<std::string>>(),
                               c.at("references").get<std::vector<std::string>>());
    SCOPED_TRACE(c.at("name").get<std::string>());
    EXPECT_NEAR(b.score, c.at("score").get<double>(), 1e-9);
    EXPECT_NEAR(b.bp, c.at("bp").get<double>(), 1e-12);
    EXPECT_EQ(b.stats.sys_len, c.at("sys_len").get<int64_t>());
    EXPECT_EQ(b.stats.ref_len, c.at("ref_len").get<int64_t>());
    for (int n = 0; n < kBleuMaxOrder; ++n) {
      EXPECT_EQ(b.stats.correct[n], c.at("counts")[n].get<int64_t>());
      EXPECT_EQ(b.stats.total[n], c.at("totals")[n].get<int64_t>());
    }
  }
}

}  // namespace
}  // namespace ferry::translate
