// tools/data/imdb_pretrain.cpp
#include "tools/data/imdb_pretrain.h"

#include "tools/data/fingerprint.h"

namespace ferry::data {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string collapse_whitespace(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool pending_space = false;
  for (const char c : text) {
    if (is_space(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

}  // namespace

bool imdb_review_in_pretrain_pool(std::string_view text) {
  return unit_interval(fingerprint(collapse_whitespace(text), kImdbPoolSeed)) < kImdbPoolFraction;
}

std::vector<size_t> imdb_pretrain_ids(const std::vector<std::string>& review_texts) {
  std::vector<size_t> ids;
  for (size_t i = 0; i < review_texts.size(); ++i) {
    if (imdb_review_in_pretrain_pool(review_texts[i])) ids.push_back(i);
  }
  return ids;
}

}  // namespace ferry::data
