// tools/tasks/imdb.cpp
#include "tools/tasks/imdb.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "engine/assets.h"
#include "base/error.h"
#include "tools/data/corpus_sources.h"
#include "tools/data/imdb_pretrain.h"

namespace ferry::tasks {

namespace {

std::string normalised(const std::string& t) {
  std::string out;
  bool space = false;
  for (char c : t) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

template <typename V>
void seeded_shuffle(V& v, uint64_t seed) {
  // Fisher–Yates with mt19937_64: the same order on every standard library (std::shuffle is not).
  std::mt19937_64 rng(seed);
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng() % i]);
}

}  // namespace

std::filesystem::path default_imdb_path() { return assets_dir() / "imdb" / "reviews.json"; }

std::vector<Review> read_imdb_reviews(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) user_error("IMDB reviews '", path.string(), "' cannot be read (run scripts/fetch_assets.sh)");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const std::exception& e) {
    user_error("IMDB reviews '", path.string(), "': not JSON: ", e.what());
  }
  if (!j.is_array()) user_error("IMDB reviews '", path.string(), "': expected an array of {t, s}");
  std::vector<Review> out;
  out.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    const auto& r = j[i];
    if (!r.is_object() || !r.contains("t") || !r["t"].is_string() || !r.contains("s") || !r["s"].is_number_integer())
      user_error("IMDB reviews '", path.string(), "': entry ", i, " is not {\"t\": text, \"s\": 0|1}");
    const int64_t s = r["s"].get<int64_t>();  // not int: 2^32 would wrap to label 0
    if (s != 0 && s != 1) user_error("IMDB reviews '", path.string(), "': entry ", i, " has label ", s);
    out.push_back({r["t"].get<std::string>(), static_cast<int>(s)});
  }
  return out;
}

ImdbSplit split_imdb(const std::vector<Review>& reviews, uint64_t seed, size_t dev_per_label) {
  ImdbSplit s;
  s.read = reviews.size();
  s.seed = seed;
  // Group copies by normalised text; keep a group's first copy unless its labels disagree.
  std::unordered_map<std::string, size_t> first;  // normalised text → index of the first copy
  std::vector<bool> keep(reviews.size(), false), conflict(reviews.size(), false);
  for (size_t i = 0; i < reviews.size(); ++i) {
    auto [it, fresh] = first.emplace(normalised(reviews[i].text), i);
    if (fresh) {
      keep[i] = true;
    } else {
      ++s.duplicates_dropped;
      if (reviews[it->second].label != reviews[i].label) conflict[it->second] = true;
    }
  }
  std::vector<size_t> outside[2];
  for (size_t i = 0; i < reviews.size(); ++i) {
    if (!keep[i]) continue;
    if (conflict[i]) {
      ++s.conflicting_dropped;
      continue;
    }
    if (data::imdb_review_in_pretrain_pool(reviews[i].text))
      s.train.push_back(reviews[i]);
    else
      outside[reviews[i].label].push_back(i);
  }
  for (int label = 0; label < 2; ++label) {
    seeded_shuffle(outside[label], seed + static_cast<uint64_t>(label));
    const size_t n_dev = std::min(dev_per_label, outside[label].size() / 2);
    for (size_t k = 0; k < outside[label].size(); ++k)
      (k < n_dev ? s.dev : s.test).push_back(reviews[outside[label][k]]);
  }
  return s;
}

std::vector<Review> stratified_subset(const std::vector<Review>& train, size_t n, uint64_t seed) {
  std::vector<Review> out;
  if (n == 0 || n >= train.size()) {
    out = train;
  } else {
    std::vector<size_t> by_label[2];
    for (size_t i = 0; i < train.size(); ++i) by_label[train[i].label].push_back(i);
    const size_t want[2] = {n - n / 2, n / 2};
    for (int label = 0; label < 2; ++label) {
      seeded_shuffle(by_label[label], seed * 2 + static_cast<uint64_t>(label) + 1);
      const size_t take = std::min(want[label], by_label[label].size());
      for (size_t k = 0; k < take; ++k) out.push_back(train[by_label[label][k]]);
    }
  }
  seeded_shuffle(out, seed ^ 0x5EEDull);
  return out;
}

std::string review_prose(const std::string& text) { return data::clean_imdb_review(text); }

}  // namespace ferry::tasks
