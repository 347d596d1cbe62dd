// tools/data/prepare_corpus.cpp
#include "tools/data/prepare_corpus.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <iterator>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <span>

#include "engine/assets.h"
#include "engine/checkpoint/atomic_file.h"
#include "engine/data/shard.h"
#include "base/error.h"
#include "tools/data/corpus_sources.h"
#include "tools/data/fingerprint.h"
#include "tools/data/progress_bar.h"
#include "tools/tokenizer/gpt2_tokenizer.h"

namespace ferry::data {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Bump whenever what a document is changes (cleaning, sectioning, separator, split or order rule):
// old corpora then stop counting as up to date.
constexpr int kCorpusFormat = 1;
constexpr uint64_t kOrderSalt = 0x6F72646572ull;  // a second, independent hash for the order
constexpr size_t kEncodeBatchBytes = 8u << 20;    // documents encoded in parallel between bar updates
const char* const kManifestName = "manifest.json";

std::string hex(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016" PRIx64, v);
  return buf;
}

json file_record(const fs::path& file, const fs::path& relative_to) {
  return {{"path", fs::relative(file, relative_to).generic_string()},
          {"size", fs::file_size(file)},
          {"fingerprint", hex(fingerprint_file(file))}};
}

// Everything the shards depend on. Equal keys mean equal shards.
json corpus_key(const PrepareOptions& o) {
  json inputs = json::array();
  for (const auto& name : o.sources) {
    const auto& source = corpus_source(name);
    for (const auto& file : source_files(source, o.assets)) {
      json record = file_record(file, o.assets);
      record["source"] = name;
      inputs.push_back(std::move(record));
    }
  }
  json tokenizer = json::array();
  for (const char* file : {"encoder.json", "vocab.bpe"}) {
    const fs::path path = o.tokenizer_dir / file;
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) {
      user_error("GPT-2 vocabulary file '", path.string(), "' is missing; run scripts/fetch_assets.sh");
    }
    tokenizer.push_back(file_record(path, o.tokenizer_dir));
  }
  return {{"format", kCorpusFormat},
          {"options",
           {{"sources", o.sources},
            {"val_fraction", o.val_fraction},
            {"seed", o.seed},
            {"shard_tokens", o.shard_tokens},
            {"book_section_bytes", kBookSectionBytes}}},
          {"tokenizer", tokenizer},
          {"inputs", inputs}};
}

json to_json(const PrepareSummary& s) {
  auto split = [](const SplitSummary& x) {
    return json{{"documents", x.documents}, {"tokens", x.tokens}, {"shards", x.shards}};
  };
  json sources = json::object();
  for (const auto& [name, x] : s.sources) {
    sources[name] = {{"documents", x.documents}, {"val_documents", x.val_documents}, {"bytes", x.bytes},
                     {"tokens", x.tokens}};
  }
  return {{"train", split(s.train)}, {"val", split(s.val)}, {"sources", sources}};
}

PrepareSummary summary_from_json(const json& j) {
  PrepareSummary s;
  auto split = [](const json& x, SplitSummary& out) {
    out.documents = x.at("documents").get<size_t>();
    out.tokens = x.at("tokens").get<size_t>();
    out.shards = x.at("shards").get<std::vector<std::string>>();
  };
  split(j.at("train"), s.train);
  split(j.at("val"), s.val);
  for (const auto& [name, x] : j.at("sources").items()) {
    s.sources[name] = {x.at("documents").get<size_t>(), x.at("val_documents").get<size_t>(),
                       x.at("bytes").get<size_t>(), x.at("tokens").get<size_t>()};
  }
  return s;
}

// The previous run's summary when its manifest matches `key` and its shards are all still there with
// the sizes it wrote; nothing otherwise (including a missing or unreadable manifest).
std::optional<PrepareSummary> existing_corpus(const fs::path& out, const json& key) {
  std::ifstream in(out / kManifestName);
  if (!in) return std::nullopt;
  try {
    const json manifest = json::parse(in);
    if (manifest.at("key") != key) return std::nullopt;
    for (const auto& shard : manifest.at("shards")) {
      std::error_code ec;
      const fs::path path = out / shard.at("file").get<std::string>();
      if (fs::file_size(path, ec) != shard.at("bytes").get<uintmax_t>() || ec) return std::nullopt;
    }
    PrepareSummary summary = summary_from_json(manifest.at("summary"));
    summary.up_to_date = true;
    return summary;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

bool is_corpus_shard_name(const std::string& name) {
  static const std::regex pattern("corpus_(train|val)_[0-9]{6}\\.bin");
  return std::regex_match(name, pattern);
}

struct PlacedDocument {
  size_t index;    // into the document list
  uint64_t order;  // sort key inside its split
};

void validate(const PrepareOptions& o) {
  if (!(o.val_fraction >= 0.0 && o.val_fraction < 1.0)) {
    user_error("--val-fraction must be in [0, 1), got ", o.val_fraction);
  }
  if (o.shard_tokens < 1 || o.shard_tokens > kMaxShardTokens) {
    user_error("--shard-tokens must be in [1, ", kMaxShardTokens, "], got ", o.shard_tokens);
  }
  if (o.sources.empty()) user_error("--sources names no corpus source");
  for (size_t i = 0; i < o.sources.size(); ++i) {
    corpus_source(o.sources[i]);  // throws for an unknown name
    if (std::find(o.sources.begin(), o.sources.begin() + i, o.sources[i]) != o.sources.begin() + i) {
      user_error("--sources names '", o.sources[i], "' twice");
    }
  }
}

}  // namespace

fs::path default_corpus_dir() { return assets_dir().parent_path() / "corpus"; }

PrepareSummary prepare_corpus(const PrepareOptions& o) {
  validate(o);
  const json key = corpus_key(o);
  if (!o.force) {
    if (auto existing = existing_corpus(o.out, key)) return *existing;
  }
  const auto tokenizer = tokenizer::Gpt2Tokenizer::load(o.tokenizer_dir);

  std::vector<CorpusDocument> docs;
  for (const auto& name : o.sources) {
    auto more = read_source(corpus_source(name), o.assets);
    std::move(more.begin(), more.end(), std::back_inserter(docs));
  }
  if (docs.empty()) user_error("the corpus sources (", key["options"]["sources"].dump(), ") hold no documents");

  // Split and order by seeded hashes of each document's identity, never of its position in the list.
  std::vector<PlacedDocument> train, val;
  std::vector<double> draw(docs.size());
  for (size_t i = 0; i < docs.size(); ++i) {
    const std::string identity = docs[i].source + "/" + docs[i].name;
    draw[i] = unit_interval(fingerprint(identity, o.seed));
    const PlacedDocument placed{i, fingerprint(identity, o.seed ^ kOrderSalt)};
    (draw[i] < o.val_fraction ? val : train).push_back(placed);
  }
  // A tiny corpus can draw an empty split; move the document with the nearest draw across.
  if (o.val_fraction > 0 && val.empty() && train.size() > 1) {
    const auto nearest = std::min_element(train.begin(), train.end(),
                                          [&](const auto& a, const auto& b) { return draw[a.index] < draw[b.index]; });
    val.push_back(*nearest);
    train.erase(nearest);
  }
  if (train.empty()) user_error("the train split is empty: ", docs.size(), " documents, --val-fraction ", o.val_fraction);
  const auto by_order = [](const PlacedDocument& a, const PlacedDocument& b) {
    return a.order != b.order ? a.order < b.order : a.index < b.index;
  };
  std::sort(train.begin(), train.end(), by_order);
  std::sort(val.begin(), val.end(), by_order);

  PrepareSummary summary;
  size_t total_bytes = 0;
  for (const auto& d : docs) total_bytes += d.text.size();
  for (const auto& d : docs) {
    auto& s = summary.sources[d.source];
    ++s.documents;
    s.bytes += d.text.size();
  }

  ProgressBar bar("tokenizing", total_bytes, "MB");
  size_t bytes_done = 0;
  // Encodes a split's documents in order: batches of documents in parallel (the tokenizer may be
  // shared between threads), appended in the split's order, so the result never depends on threads.
  auto encode_split = [&](const std::vector<PlacedDocument>& split, SplitSummary& split_summary, bool is_val) {
    std::vector<uint16_t> tokens;
    size_t begin = 0;
    while (begin < split.size()) {
      size_t end = begin, batch_bytes = 0;
      while (end < split.size() && (end == begin || batch_bytes < kEncodeBatchBytes)) {
        batch_bytes += docs[split[end].index].text.size();
        ++end;
      }
      std::vector<std::vector<int32_t>> encoded(end - begin);
      std::exception_ptr failure;
      std::mutex failure_lock;
#pragma omp parallel for schedule(dynamic, 1)
      for (size_t k = begin; k < end; ++k) {
        try {
          auto& ids = encoded[k - begin];
          ids.push_back(tokenizer::Gpt2Tokenizer::kEndOfText);
          tokenizer.encode_append(docs[split[k].index].text, ids);
        } catch (...) {
          std::lock_guard<std::mutex> lock(failure_lock);
          if (!failure) failure = std::current_exception();
        }
      }
      if (failure) std::rethrow_exception(failure);
      for (size_t k = begin; k < end; ++k) {
        const auto& ids = encoded[k - begin];
        for (const int32_t id : ids) {
          FERRY_CHECK(id >= 0 && id < tokenizer::Gpt2Tokenizer::kVocabSize, "tokenizer produced id ", id);
          tokens.push_back(static_cast<uint16_t>(id));
        }
        auto& s = summary.sources[docs[split[k].index].source];
        s.tokens += ids.size();
        if (is_val) ++s.val_documents;
      }
      bytes_done += batch_bytes;
      bar.update(bytes_done);
      begin = end;
    }
    split_summary.documents = split.size();
    split_summary.tokens = tokens.size();
    return tokens;
  };
  const std::vector<uint16_t> train_tokens = encode_split(train, summary.train, false);
  const std::vector<uint16_t> val_tokens = encode_split(val, summary.val, true);
  bar.finish();

  std::error_code ec;
  fs::create_directories(o.out, ec);
  if (ec) user_error("cannot create the corpus folder '", o.out.string(), "': ", ec.message());
  fs::remove(o.out / kManifestName, ec);  // from here until the new one is written, nothing is up to date

  json shard_records = json::array();
  auto write_split = [&](const std::vector<uint16_t>& tokens, const char* split, SplitSummary& split_summary) {
    for (size_t first = 0, n = 0; first < tokens.size(); first += o.shard_tokens, ++n) {
      char name[64];
      std::snprintf(name, sizeof(name), "corpus_%s_%06zu.bin", split, n);
      const size_t count = std::min(o.shard_tokens, tokens.size() - first);
      write_shard(o.out / name, std::span<const uint16_t>(tokens.data() + first, count));
      split_summary.shards.push_back(name);
      shard_records.push_back({{"file", name}, {"tokens", count}, {"bytes", kShardHeaderBytes + 2 * count}});
    }
  };
  write_split(train_tokens, "train", summary.train);
  write_split(val_tokens, "val", summary.val);

  // Shards of an earlier build with more of them would otherwise join this corpus's glob.
  for (const auto& entry : fs::directory_iterator(o.out)) {
    const std::string name = entry.path().filename().string();
    const bool written = std::find(summary.train.shards.begin(), summary.train.shards.end(), name) !=
                             summary.train.shards.end() ||
                         std::find(summary.val.shards.begin(), summary.val.shards.end(), name) != summary.val.shards.end();
    if (is_corpus_shard_name(name) && !written) fs::remove(entry.path(), ec);
  }

  const json manifest = {{"key", key}, {"shards", shard_records}, {"summary", to_json(summary)}};
  write_file_atomically(o.out / kManifestName, manifest.dump(2) + "\n");
  return summary;
}

}  // namespace ferry::data
