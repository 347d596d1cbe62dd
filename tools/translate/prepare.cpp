// tools/translate/prepare.cpp
#include "tools/translate/prepare.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/assets.h"
#include "engine/checkpoint/atomic_file.h"
#include "base/error.h"

namespace ferry::translate {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The canon through diatheke, one call per book (see verses.h), footnotes on (-o f) so that the
// words around a note's anchor keep their space.
std::string run_diatheke(const std::string& module) {
  for (char c : module)
    if (!std::isalnum(static_cast<unsigned char>(c))) user_error("translate: bad SWORD module name '", module, "'");
  std::string text;
  for (const std::string& book : bible_books()) {
    const std::string cmd = "diatheke -b " + module + " -o f -f plain -k '" + book + "' 2>/dev/null";
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) user_error("translate: cannot run diatheke (install it: bash scripts/fetch_translate_data.sh)");
    const size_t before = text.size();
    char buf[1 << 16];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) text.append(buf, n);
    const int status = pclose(p);
    if (status != 0 || text.size() == before)
      user_error("translate: diatheke -b ", module, " -k '", book,
                 "' gave no text (are diatheke and the module installed? bash scripts/fetch_translate_data.sh)");
    text += "\n";  // a book's last verse ends here
  }
  return text;
}

std::map<VerseRef, std::string> load_module(const std::string& module, const fs::path& text_file) {
  if (!text_file.empty()) {
    std::ifstream in(text_file);
    if (!in) user_error("translate: cannot read ", text_file.string());
    return parse_diatheke_plain(in);
  }
  std::istringstream in(run_diatheke(module));
  return parse_diatheke_plain(in);
}

json key_of(const TranslatePrepareOptions& o) {
  return {{"en_module", o.en_module}, {"es_module", o.es_module}, {"en_text", o.en_text.string()},
          {"es_text", o.es_text.string()}, {"seed", o.seed}, {"test_fraction", o.test_fraction},
          {"dev_fraction", o.dev_fraction}, {"format", 3}};
}

std::vector<std::string> names(const std::vector<int>& books) {
  std::vector<std::string> out;
  for (int b : books) out.push_back(bible_books()[b]);
  return out;
}

}  // namespace

fs::path default_translate_dir() {
  if (const char* env = std::getenv("FERRY_TRANSLATE_DATA"); env && *env) return env;
  return assets_dir().parent_path() / "translate";
}

TranslatePrepareSummary prepare_translate(const TranslatePrepareOptions& opt) {
  TranslatePrepareOptions o = opt;
  if (o.out.empty()) o.out = default_translate_dir();
  const json key = key_of(o);
  TranslatePrepareSummary s;
  const fs::path manifest = o.out / "manifest.json";
  if (!o.force && fs::exists(manifest)) {
    try {
      std::ifstream in(manifest);
      const json m = json::parse(in);
      bool files = true;
      for (const char* split : {"train", "dev", "test"}) files = files && fs::exists(o.out / (std::string(split) + ".jsonl"));
      if (files && m.at("key") == key) {
        s.up_to_date = true;
        s.en_verses = m.at("en_verses");
        s.es_verses = m.at("es_verses");
        s.pairs = m.at("pairs");
        s.train = m.at("counts").at("train");
        s.dev = m.at("counts").at("dev");
        s.test = m.at("counts").at("test");
        s.dev_books = m.at("books").at("dev").get<std::vector<std::string>>();
        s.test_books = m.at("books").at("test").get<std::vector<std::string>>();
        return s;
      }
    } catch (const json::exception&) {
      // an unreadable manifest: rebuild
    }
  }
  const auto en = load_module(o.en_module, o.en_text);
  const auto es = load_module(o.es_module, o.es_text);
  const auto pairs = join_verses(en, es);
  if (pairs.empty()) user_error("translate: no verse reference is in both texts");
  const BookSplit split = split_by_book(pairs, o.seed, o.test_fraction, o.dev_fraction);
  s.en_verses = en.size();
  s.es_verses = es.size();
  s.pairs = pairs.size();
  s.dev_books = names(split.dev);
  s.test_books = names(split.test);

  fs::create_directories(o.out);
  auto write_split = [&](const char* name, const std::vector<int>& books) {
    std::string text;
    size_t n = 0;
    for (const auto& p : pairs) {
      if (!std::binary_search(books.begin(), books.end(), p.ref.book)) continue;
      text += json{{"ref", p.ref.str()}, {"book", bible_books()[p.ref.book]}, {"en", p.en}, {"es", p.es}}.dump() + "\n";
      ++n;
    }
    write_file_atomically(o.out / (std::string(name) + ".jsonl"), text);
    return n;
  };
  s.train = write_split("train", split.train);
  s.dev = write_split("dev", split.dev);
  s.test = write_split("test", split.test);
  const json m = {{"key", key},
                  {"en_verses", s.en_verses},
                  {"es_verses", s.es_verses},
                  {"pairs", s.pairs},
                  {"counts", {{"train", s.train}, {"dev", s.dev}, {"test", s.test}}},
                  {"books", {{"train", names(split.train)}, {"dev", s.dev_books}, {"test", s.test_books}}}};
  write_file_atomically(manifest, m.dump(2) + "\n");
  return s;
}

std::vector<PairRecord> read_pairs(const fs::path& file) {
  std::ifstream in(file);
  if (!in)
    user_error("translate: cannot read ", file.string(),
               " (make it with: ferry data prepare --task translate; data folder: $FERRY_TRANSLATE_DATA or "
               "data/translate)");
  std::vector<PairRecord> out;
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    try {
      const json j = json::parse(line);
      out.push_back({j.at("ref").get<std::string>(), j.value("book", ""), j.at("en").get<std::string>(),
                     j.at("es").get<std::string>()});
    } catch (const json::exception& e) {
      user_error(file.string(), ":", n, ": not a verse pair (", e.what(), ")");
    }
  }
  return out;
}

}  // namespace ferry::translate
