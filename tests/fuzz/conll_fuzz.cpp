// tests/fuzz/conll_fuzz.cpp — CoNLL/BIO files (WNUT-17, BTC: token<TAB>tag per line, a blank line
// between sentences) for `ferry finetune --task ner`.
// Properties: a file parses or gives a UserError naming file:line; every sentence is non-empty with
// one tag per word, every tag O / B-x / I-x; the sentences written back parse to the same ones; the
// tag set built from them knows every tag.
#include "base/error.h"
#include "tests/fuzz/fuzz_support.h"
#include "tools/tasks/conll.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry;
  using namespace ferry::tasks;
  std::vector<TaggedSentence> sentences;
  try {
    sentences = parse_conll(std::string(fuzz::as_chars(data, size)), "fuzz.conll");
  } catch (const UserError&) {
    return 0;
  }
  std::string back;
  for (const auto& s : sentences) {
    FUZZ_ASSERT(!s.words.empty() && s.words.size() == s.tags.size(), "a sentence without words or with a tag per word missing");
    for (size_t i = 0; i < s.words.size(); ++i) {
      const std::string& t = s.tags[i];
      FUZZ_ASSERT(t == "O" || ((t.rfind("B-", 0) == 0 || t.rfind("I-", 0) == 0) && t.size() > 2), "tag '" + t + "'");
      back += s.words[i] + "\t" + t + "\n";
    }
    back += "\n";
  }
  const auto reread = parse_conll(back, "roundtrip.conll");
  FUZZ_ASSERT(reread.size() == sentences.size(), "round trip changed the sentence count");
  for (size_t i = 0; i < sentences.size(); ++i)
    FUZZ_ASSERT(reread[i].words == sentences[i].words && reread[i].tags == sentences[i].tags,
                "round trip changed sentence " + std::to_string(i));
  const TagSet tags = tag_set_of(sentences);
  for (const auto& s : sentences)
    for (const auto& t : s.tags) FUZZ_ASSERT(tags.id(t) >= 0, "tag set lacks '" + t + "'");
  return 0;
}
