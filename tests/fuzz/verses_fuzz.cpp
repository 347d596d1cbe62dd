// tests/fuzz/verses_fuzz.cpp — the translation task's inputs: diatheke's plain Bible text (what `ferry
// data prepare --task translate` parses) and the verse-pair files it writes (train/dev/test.jsonl,
// read by fine-tuning and `ferry translate`).
// Input: one mode byte, then the text. Even mode: diatheke text; odd: a pairs file.
// Properties: diatheke text parses (it has no errors: what is not a verse is skipped) to references
// inside the canon and cleaned text (no markup left, single spaces, no space at either end); a
// verse-pair file reads or gives a UserError naming file:line, and the pairs written back as JSON
// lines read to the same pairs.
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "tests/fuzz/fuzz_support.h"
#include "tools/translate/prepare.h"
#include "tools/translate/verses.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry;
  using namespace ferry::translate;
  if (size < 1) return 0;
  const std::string text(fuzz::as_chars(data + 1, size - 1));
  if (data[0] % 2 == 0) {
    std::istringstream in(text);
    std::map<VerseRef, std::string> verses;
    try {
      verses = parse_diatheke_plain(in);
    } catch (const UserError&) {
      return 0;
    }
    for (const auto& [ref, t] : verses) {
      FUZZ_ASSERT(ref.book >= 0 && ref.book < static_cast<int>(bible_books().size()), "book outside the canon");
      FUZZ_ASSERT(t.empty() || (t.front() != ' ' && t.back() != ' '), "space at an end of '" + t + "'");
      FUZZ_ASSERT(t.find("  ") == std::string::npos, "double space in '" + t + "'");
    }
    const auto pairs = join_verses(verses, verses);
    for (const auto& p : pairs) FUZZ_ASSERT(!p.en.empty() && p.en == p.es, "a verse joined to itself differs");
    const BookSplit split = split_by_book(pairs, data[0], 0.2, 0.1);
    FUZZ_ASSERT(split.train.size() + split.dev.size() + split.test.size() <= bible_books().size(), "books repeated");
    return 0;
  }
  const auto path = fuzz::write_scratch("pairs.jsonl", text);
  std::vector<PairRecord> pairs;
  try {
    pairs = read_pairs(path);
  } catch (const UserError&) {
    return 0;
  }
  std::string back;
  for (const auto& p : pairs)
    back += nlohmann::json{{"ref", p.ref}, {"book", p.book}, {"en", p.en}, {"es", p.es}}.dump() + "\n";
  const auto reread = read_pairs(fuzz::write_scratch("again.jsonl", back));
  FUZZ_ASSERT(reread.size() == pairs.size(), "round trip changed the pair count");
  for (size_t i = 0; i < pairs.size(); ++i)
    FUZZ_ASSERT(reread[i].ref == pairs[i].ref && reread[i].book == pairs[i].book && reread[i].en == pairs[i].en &&
                    reread[i].es == pairs[i].es,
                "round trip changed pair " + std::to_string(i));
  return 0;
}
