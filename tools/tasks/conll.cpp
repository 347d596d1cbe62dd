// tools/tasks/conll.cpp
#include "tools/tasks/conll.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "engine/assets.h"
#include "base/error.h"

namespace ferry::tasks {

std::vector<TaggedSentence> parse_conll(const std::string& text, const std::string& source) {
  std::vector<TaggedSentence> out;
  TaggedSentence cur;
  std::istringstream in(text);
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) {
      if (!cur.words.empty()) out.push_back(std::move(cur));
      cur = {};
      continue;
    }
    const auto tab = line.find('\t');
    if (tab == std::string::npos) user_error(source, ":", line_no, ": expected token<TAB>tag");
    std::string tag = line.substr(tab + 1);
    // A type is a name: whitespace or a control character in it (a stray "\r" from a file with
    // doubled line endings) would not survive the file being written again.
    const bool plain = std::none_of(tag.begin(), tag.end(), [](unsigned char c) { return c <= ' ' || c == 0x7f; });
    if (!plain || !(tag == "O" || ((tag.rfind("B-", 0) == 0 || tag.rfind("I-", 0) == 0) && tag.size() > 2)))
      user_error(source, ":", line_no, ": tag '", tag, "' is not O, B-type or I-type");
    cur.words.push_back(line.substr(0, tab));
    cur.tags.push_back(std::move(tag));
  }
  if (!cur.words.empty()) out.push_back(std::move(cur));
  return out;
}

std::vector<TaggedSentence> read_conll(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) user_error("NER file '", file.string(), "' cannot be read");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_conll(ss.str(), file.string());
}

int TagSet::id(const std::string& tag) const {
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == tag) return static_cast<int>(i);
  return -1;
}

std::vector<std::string> TagSet::types() const {
  std::vector<std::string> t;
  for (const auto& n : names)
    if (n.rfind("B-", 0) == 0) t.push_back(n.substr(2));
  return t;
}

TagSet tag_set_from_types(const std::vector<std::string>& types) {
  std::set<std::string> sorted(types.begin(), types.end());
  TagSet s;
  s.names.push_back("O");
  for (const auto& t : sorted) {
    s.names.push_back("B-" + t);
    s.names.push_back("I-" + t);
  }
  return s;
}

TagSet tag_set_of(const std::vector<TaggedSentence>& sentences) {
  std::vector<std::string> types;
  for (const auto& s : sentences)
    for (const auto& t : s.tags)
      if (t != "O") types.push_back(t.substr(2));
  return tag_set_from_types(types);
}

std::filesystem::path ner_file(const std::string& corpus, const std::string& split) {
  if (corpus != "wnut17" && corpus != "btc") user_error("--corpus: unknown NER corpus '", corpus, "' (wnut17, btc)");
  const char* env = std::getenv("FERRY_NER_DIR");
  // Default: the team's shared data folder beside the checkout (<source>/../shared/data/ner), found
  // from the asset folder <source>/data/cache.
  const std::filesystem::path root = env && *env ? std::filesystem::path(env)
                                                 : assets_dir().parent_path().parent_path().parent_path() /
                                                       "shared" / "data" / "ner";
  return root / corpus / (split + ".conll");
}

}  // namespace ferry::tasks
