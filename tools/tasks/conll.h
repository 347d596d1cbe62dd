// tools/tasks/conll.h — CoNLL-style tagged sentences (WNUT-17, BTC: `token<TAB>tag` per line, an
// empty line ends a sentence) and the tag vocabulary of a BIO scheme.
//
// Lines split on the first TAB only: a token may hold spaces (emoji + space in BTC) or be empty.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace ferry::tasks {

struct TaggedSentence {
  std::vector<std::string> words;
  std::vector<std::string> tags;  // BIO: O, B-type, I-type
};

// UserError naming file:line for a line without a TAB or a tag that is not O / B-x / I-x (x without
// whitespace or control characters).
std::vector<TaggedSentence> read_conll(const std::filesystem::path& file);
std::vector<TaggedSentence> parse_conll(const std::string& text, const std::string& source_name);

// Tag names with ids: "O" first, then B-t, I-t for each entity type t in sorted order.
struct TagSet {
  std::vector<std::string> names;
  int id(const std::string& tag) const;  // -1 when unknown
  std::vector<std::string> types() const;
};
TagSet tag_set_of(const std::vector<TaggedSentence>& sentences);
TagSet tag_set_from_types(const std::vector<std::string>& types);

// <ner folder>/<corpus>/<split>.conll (corpus: wnut17 or btc); the folder is $FERRY_NER_DIR, else the
// shared data folder beside the checkout (../shared/data/ner).
std::filesystem::path ner_file(const std::string& corpus, const std::string& split);

}  // namespace ferry::tasks
