// tests/fuzz/imdb_fuzz.cpp — IMDB reviews.json ([{"t": text, "s": 0|1}]) and the split made from it.
// Input: one byte (dev reviews per label, and the seed), then the file.
// Properties: the file reads or gives a UserError; every label is 0 or 1; the reviews written back
// as JSON read to the same reviews; the split accounts for every review exactly once (train + dev +
// test + duplicates + conflicting = read); a labelled subset never holds more than asked.
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "tests/fuzz/fuzz_support.h"
#include "tools/tasks/imdb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry;
  using namespace ferry::tasks;
  if (size < 1) return 0;
  const auto path = fuzz::write_scratch("reviews.json", fuzz::as_chars(data + 1, size - 1));
  std::vector<Review> reviews;
  try {
    reviews = read_imdb_reviews(path);
  } catch (const UserError&) {
    return 0;
  }
  nlohmann::json back = nlohmann::json::array();
  for (const Review& r : reviews) {
    FUZZ_ASSERT(r.label == 0 || r.label == 1, "label " + std::to_string(r.label));
    back.push_back({{"t", r.text}, {"s", r.label}});
  }
  const auto again = fuzz::write_scratch("again.json", back.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict));
  const std::vector<Review> reread = read_imdb_reviews(again);
  FUZZ_ASSERT(reread.size() == reviews.size(), "round trip changed the count");
  for (size_t i = 0; i < reviews.size(); ++i)
    FUZZ_ASSERT(reread[i].text == reviews[i].text && reread[i].label == reviews[i].label, "round trip changed a review");

  const size_t dev_per_label = data[0] % 8;
  const ImdbSplit s = split_imdb(reviews, data[0], dev_per_label);
  FUZZ_ASSERT(s.read == reviews.size(), "read count");
  FUZZ_ASSERT(s.train.size() + s.dev.size() + s.test.size() + s.duplicates_dropped + s.conflicting_dropped == s.read,
              "the split loses or repeats reviews");
  FUZZ_ASSERT(s.dev.size() <= 2 * dev_per_label, "dev holds more than asked");
  const size_t n = data[0] % 5;
  FUZZ_ASSERT(stratified_subset(s.train, n, 7).size() <= (n == 0 ? s.train.size() : n), "subset too large");
  return 0;
}
