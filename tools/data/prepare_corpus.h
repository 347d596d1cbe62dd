// tools/data/prepare_corpus.h — `ferry data prepare`: the pretraining corpus as llm.c token shards.
//
// Reads the sources' documents (corpus_sources.h), puts each in train or val by a seeded hash of its
// name (so adding a source never moves another source's documents), orders each split by a second
// seeded hash (so a shard mixes sources instead of holding one book), encodes each document with the
// GPT-2 tokenizer behind an <|endoftext|> (llm.c's convention: the separator opens every document),
// and writes `corpus_train_000000.bin`, … and `corpus_val_000000.bin`, … of at most shard_tokens
// tokens each.
//
// `manifest.json` beside the shards records the options, the size and fingerprint of every input
// (tokenizer files included) and every shard written; when all of that still holds, prepare does
// nothing. It is written last, after the shards, and removed before rebuilding, so an interrupted run
// is never mistaken for a finished one.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace ferry::data {

struct PrepareOptions {
  std::filesystem::path assets;          // the fetched packages (ferry::assets_dir())
  std::filesystem::path out;             // where the shards go (default_corpus_dir())
  std::filesystem::path tokenizer_dir;   // GPT-2 vocabulary (Gpt2Tokenizer::default_dir())
  std::vector<std::string> sources = {"gutenberg", "sotu", "imdb"};
  double val_fraction = 0.02;
  uint64_t seed = 1337;
  size_t shard_tokens = 4'000'000;
  bool force = false;                    // rebuild even when up to date
};

struct SplitSummary {
  size_t documents = 0;
  size_t tokens = 0;  // <|endoftext|> separators included
  std::vector<std::string> shards;
};

struct SourceSummary {
  size_t documents = 0;
  size_t val_documents = 0;
  size_t bytes = 0;   // UTF-8 text after normalisation
  size_t tokens = 0;
};

struct PrepareSummary {
  bool up_to_date = false;  // true: nothing was rebuilt, the numbers are the manifest's
  SplitSummary train, val;
  std::map<std::string, SourceSummary> sources;
};

// <assets folder>/../corpus: data/corpus in the source tree unless $FERRY_ASSETS moves the assets.
std::filesystem::path default_corpus_dir();

// Throws UserError for bad options, a missing source or tokenizer, or an unwritable output folder.
PrepareSummary prepare_corpus(const PrepareOptions& options);

}  // namespace ferry::data
