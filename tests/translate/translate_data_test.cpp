// tests/translate/translate_data_test.cpp — verse pairs from diatheke's plain output (keys,
// continuation lines, headings, footnotes, markup), the join, the split by book, the
// conditional-LM examples, and `ferry data prepare --task translate` on small texts.
#include <fstream>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "tests/support/support.h"
#include "tools/translate/prepare.h"
#include "tools/translate/task.h"
#include "tools/translate/verses.h"

namespace ferry::translate {
namespace {

// Shaped like `diatheke -o f -f plain` output: an indented key, poetry continuation lines, a blank
// line then a repeated heading, a footnote, Strong's numbers, a non-canonical book and the trailer.
const char* kEnglish =
    "Genesis 1:1: In the beginning, God [1:1 The Hebrew word rendered “God” is “Elohim”.] created the heavens.\n"
    "Genesis 1:2: The earth was formless [] and empty.\n"
    "\n"
    "A Psalm by David.\n"
    "  Psalms 3:1: Yahweh, how my adversaries have increased!\n"
    "Many are those who rise up against me. \n"
    "\n"
    "A Psalm by David.\n"
    "  Psalms 3:2: Many there are who say of my soul,\n"
    "Selah.\n"
    "Tobit 1:1: The book of the words of Tobit.\n"
    "Jude 1:1: Jude, a servant of Jesus Christ.\n"
    "(engWEB2015eb)\n";
const char* kSpanish =
    "Genesis 1:1: EN el principio <H7225> crió Dios los cielos.\n"
    "Genesis 1:2: Y la tierra estaba desordenada y vacía.\n"
    "Psalms 3:1: ¡OH Jehová, cuánto se han multiplicado mis enemigos!\n"
    "Psalms 3:2: Muchos dicen de mi vida. (Selah.)\n"
    "Jude 1:1: Judas, siervo de Jesucristo.\n"
    "Revelation of John 22:21: La gracia de nuestro Señor.\n"
    "(spaRV1909eb)\n";

std::map<VerseRef, std::string> parse(const char* text) {
  std::istringstream in(text);
  return parse_diatheke_plain(in);
}

TEST(Verses, ParsesKeysContinuationsAndDropsHeadingsFootnotesAndMarkup) {
  const auto en = parse(kEnglish);
  ASSERT_EQ(en.size(), 5u);  // Tobit is not canonical: its line is no key (and follows Selah.)
  const VerseRef gen11{book_index("Genesis"), 1, 1}, ps31{book_index("Psalms"), 3, 1}, ps32{book_index("Psalms"), 3, 2};
  EXPECT_EQ(en.at(gen11), "In the beginning, God created the heavens.");
  EXPECT_EQ(en.at({0, 1, 2}), "The earth was formless and empty.");
  EXPECT_EQ(en.at(ps31), "Yahweh, how my adversaries have increased! Many are those who rise up against me.");
  // "Selah." continues 3:2; the Tobit line is neither a key nor (no blank line before it) a heading,
  // so it continues the verse as well — which is why prepare asks diatheke for the 66 books only.
  EXPECT_EQ(en.at(ps32).rfind("Many there are who say of my soul, Selah.", 0), 0u);
  EXPECT_EQ(en.at({book_index("Jude"), 1, 1}), "Jude, a servant of Jesus Christ.");
  const auto es = parse(kSpanish);
  EXPECT_EQ(es.at(gen11), "EN el principio crió Dios los cielos.");
  EXPECT_EQ(ps31.str(), "Psalms 3:1");
}

TEST(Verses, CleaningKeepsOrdinaryBracketsAndMovesNoWords) {
  EXPECT_EQ(clean_verse_text("word [1:2 a note [nested] here] , next"), "word, next");
  EXPECT_EQ(clean_verse_text("keep [these words] as they are"), "keep [these words] as they are");
  EXPECT_EQ(clean_verse_text("a<G0846>  b <title type=\"psalm\">c</title>"), "a b c");
}

TEST(Verses, JoinKeepsReferencesInBothTextsInCanonicalOrder) {
  const auto pairs = join_verses(parse(kEnglish), parse(kSpanish));
  ASSERT_EQ(pairs.size(), 5u);  // Revelation only in Spanish
  EXPECT_EQ(pairs.front().ref.str(), "Genesis 1:1");
  EXPECT_EQ(pairs.back().ref.str(), "Jude 1:1");
  EXPECT_EQ(pairs.back().es, "Judas, siervo de Jesucristo.");
}

TEST(Verses, SplitHoldsOutWholeBooksSeededAndCoversEveryBook) {
  std::vector<VersePair> pairs;
  for (int b = 0; b < 66; ++b)
    for (int v = 1; v <= 10 + 7 * (b % 5); ++v) pairs.push_back({{b, 1, v}, "e", "s"});
  const BookSplit a = split_by_book(pairs, 7, 0.1, 0.05), again = split_by_book(pairs, 7, 0.1, 0.05),
                  other = split_by_book(pairs, 8, 0.1, 0.05);
  EXPECT_EQ(a.test, again.test);
  EXPECT_EQ(a.dev, again.dev);
  EXPECT_NE(a.test, other.test);
  std::set<int> all;
  size_t test_pairs = 0, dev_pairs = 0;
  for (const auto* part : {&a.train, &a.dev, &a.test})
    for (int b : *part) EXPECT_TRUE(all.insert(b).second) << "book " << b << " in two splits";
  EXPECT_EQ(all.size(), 66u);
  for (const auto& p : pairs) {
    test_pairs += std::binary_search(a.test.begin(), a.test.end(), p.ref.book);
    dev_pairs += std::binary_search(a.dev.begin(), a.dev.end(), p.ref.book);
  }
  EXPECT_GE(test_pairs, 0.1 * pairs.size());
  EXPECT_LT(test_pairs, 0.1 * pairs.size() + 40);  // at most one book past the target
  EXPECT_GE(dev_pairs, 0.05 * pairs.size());
}

TEST(TranslateTask, LossOnlyOnTargetTokensAndEos) {
  // source 10 11 12, sep 0, target 20 21, eos 0: sequence 10 11 12 0 20 21 0
  const auto e = pair_example({10, 11, 12}, {20, 21}, 0, 0, 16);
  EXPECT_EQ(e.ids, (std::vector<int32_t>{10, 11, 12, 0, 20, 21}));
  EXPECT_EQ(e.token_labels, (std::vector<int32_t>{-1, -1, -1, 20, 21, 0}));
  // T = 6: the source keeps T/2 = 3 tokens, the window 6 positions, the target is cut (no eos).
  const auto cut = pair_example({1, 2, 3, 4, 5}, {6, 7, 8, 9}, 0, 0, 6);
  EXPECT_EQ(cut.ids, (std::vector<int32_t>{1, 2, 3, 0, 6, 7}));
  EXPECT_EQ(cut.token_labels, (std::vector<int32_t>{-1, -1, -1, 6, 7, 8}));
  EXPECT_EQ(source_prompt({1, 2, 3, 4, 5}, 0, 6), (std::vector<int32_t>{1, 2, 3, 0}));
}

TEST(TranslateData, PrepareWritesSplitsAndManifestAndRerunsAsNoOp) {
  test::TempDir dir;
  {
    std::ofstream(dir.path() / "en.txt") << kEnglish;
    std::ofstream(dir.path() / "es.txt") << kSpanish;
  }
  TranslatePrepareOptions o;
  o.out = dir.path() / "out";
  o.en_text = dir.path() / "en.txt";
  o.es_text = dir.path() / "es.txt";
  o.test_fraction = 0.2;
  o.dev_fraction = 0.2;
  const auto s = prepare_translate(o);
  EXPECT_FALSE(s.up_to_date);
  EXPECT_EQ(s.pairs, 5u);
  EXPECT_EQ(s.train + s.dev + s.test, 5u);
  EXPECT_GE(s.test, 1u);
  size_t lines = 0;
  std::set<std::string> books_seen[3];
  int k = 0;
  for (const char* split : {"train", "dev", "test"}) {
    for (const auto& p : read_pairs(o.out / (std::string(split) + ".jsonl"))) {
      ++lines;
      books_seen[k].insert(p.book);
      EXPECT_FALSE(p.en.empty());
      EXPECT_FALSE(p.es.empty());
    }
    ++k;
  }
  EXPECT_EQ(lines, 5u);
  for (const auto& b : books_seen[2]) EXPECT_FALSE(books_seen[0].count(b)) << b << " in train and test";
  EXPECT_TRUE(prepare_translate(o).up_to_date);
  o.seed = 99;
  EXPECT_FALSE(prepare_translate(o).up_to_date);
  EXPECT_THROW(read_pairs(dir.path() / "missing.jsonl"), UserError);
}

}  // namespace
}  // namespace ferry::translate
