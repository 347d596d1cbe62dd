// tools/translate/prepare.h — `ferry data prepare --task translate`: English–Spanish verse pairs
// from the World English Bible (engWEB2015eb) and the Reina-Valera 1909 (spaRV1909eb), read with
// diatheke (scripts/fetch_translate_data.sh installs them), joined on the verse reference and split
// by book. Output in <out> (default data/translate):
//   train.jsonl, dev.jsonl, test.jsonl   one pair per line: {"ref","book","en","es"}, canonical order
//   manifest.json                        modules, seed, fractions, books and counts per split
// A rerun whose manifest matches the options does nothing.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "tools/translate/verses.h"

namespace ferry::translate {

struct TranslatePrepareOptions {
  std::filesystem::path out;          // empty: default_translate_dir()
  std::string en_module = "engWEB2015eb";
  std::string es_module = "spaRV1909eb";
  std::filesystem::path en_text, es_text;  // diatheke output already on disk (tests); empty: run diatheke
  uint64_t seed = 1337;
  double test_fraction = 0.05;
  double dev_fraction = 0.03;
  bool force = false;
};

struct TranslatePrepareSummary {
  bool up_to_date = false;
  size_t en_verses = 0, es_verses = 0, pairs = 0;
  size_t train = 0, dev = 0, test = 0;
  std::vector<std::string> dev_books, test_books;
};

// $FERRY_TRANSLATE_DATA when set, else data/translate beside the asset cache.
std::filesystem::path default_translate_dir();

TranslatePrepareSummary prepare_translate(const TranslatePrepareOptions& o);

struct PairRecord {
  std::string ref, book, en, es;
};
// One split's file; UserError naming the file when it is missing (with the command that makes it)
// or a line is malformed.
std::vector<PairRecord> read_pairs(const std::filesystem::path& file);

}  // namespace ferry::translate
