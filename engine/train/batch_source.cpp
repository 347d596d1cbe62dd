// engine/train/batch_source.cpp
#include "engine/train/batch_source.h"

#include <array>

#include "base/error.h"
#include "engine/random.h"

namespace ferry {

TokenStreamSource::TokenStreamSource(std::vector<int32_t> tokens, int B, int T, int dp_rank, int dp_size)
    : tokens_(std::move(tokens)), B_(B), T_(T), dp_rank_(dp_rank), dp_size_(dp_size) {
  FERRY_CHECK(dp_size_ >= 1 && dp_rank_ >= 0 && dp_rank_ < dp_size_, "bad data-parallel slice");
  if (tokens_.size() < static_cast<size_t>(T) + 1)
    user_error("data: ", tokens_.size(), " tokens cannot fill one sequence of ", T, "+1 tokens");
}

void TokenStreamSource::next(int32_t* inputs, int32_t* targets) {
  for (int row = 0; row < dp_size_ * B_; ++row) {
    if (cursor_ + T_ + 1 > tokens_.size()) cursor_ = 0;
    if (row / B_ == dp_rank_) {
      const int b = row % B_;
      for (int t = 0; t < T_; ++t) {
        inputs[b * T_ + t] = tokens_[cursor_ + t];
        targets[b * T_ + t] = tokens_[cursor_ + t + 1];
      }
    }
    cursor_ += T_;
  }
}

nlohmann::json ShardSource::position() const {
  nlohmann::json j;
  data::to_json(j, loader_.position());
  return j;
}

void ShardSource::restore(const nlohmann::json& pos) {
  data::LoaderPosition p;
  data::from_json(pos, p);
  loader_.restore(p);
}

void TokenStreamSource::restore(const nlohmann::json& pos) {
  const size_t c = pos.at("cursor").get<size_t>();
  if (c >= tokens_.size()) user_error("data position ", c, " is past the end of the stream (", tokens_.size(), ")");
  cursor_ = c;
}

std::vector<int32_t> byte_tokens(const std::string& text) {
  std::vector<int32_t> r(text.size());
  for (size_t i = 0; i < text.size(); ++i) r[i] = static_cast<unsigned char>(text[i]);
  return r;
}

std::string synthetic_corpus(size_t approx_bytes, uint64_t seed) {
  // Sentences with agreement and a little long-range structure (a name introduced, then
  // referred to), so that a model has something beyond letter frequencies to learn.
  static const std::array<const char*, 12> names = {"Ada",   "Boris", "Clara", "Dmitri", "Elena", "Farid",
                                                    "Greta", "Hugo",  "Ines",  "Jonas",  "Kemal", "Lena"};
  static const std::array<const char*, 10> adjectives = {"old",   "quiet", "bright", "heavy", "small",
                                                         "green", "tired", "clever", "brave", "cold"};
  static const std::array<const char*, 10> nouns = {"ferry",  "lantern", "harbor", "river", "market",
                                                    "garden", "letter",  "bridge", "boat",  "window"};
  static const std::array<const char*, 8> verbs = {"carried", "painted", "found", "watched",
                                                   "opened",  "followed", "built", "cleaned"};
  static const std::array<const char*, 6> places = {"by the sea", "in the city", "near the hill",
                                                    "at dawn",    "after the rain", "before noon"};
  static const std::array<const char*, 4> joins = {"Then", "Later", "After that", "At last"};
  Rng rng(seed);
  auto pick = [&](const auto& arr) { return arr[rng.below(arr.size())]; };
  std::string out;
  out.reserve(approx_bytes + 256);
  while (out.size() < approx_bytes) {
    const char* name = pick(names);
    const int sentences = 2 + static_cast<int>(rng.below(3));
    out += name;
    out += " lived ";
    out += pick(places);
    out += ". ";
    for (int s = 0; s < sentences; ++s) {
      out += s == 0 ? name : pick(joins);
      if (s != 0) {
        out += " ";
        out += rng.below(2) ? "she" : "he";
      }
      out += " ";
      out += pick(verbs);
      out += " the ";
      out += pick(adjectives);
      out += " ";
      out += pick(nouns);
      if (rng.below(2)) {
        out += " ";
        out += pick(places);
      }
      out += ". ";
    }
    out += "The end of the story of ";
    out += name;
    out += ".\n";
  }
  return out;
}

}  // namespace ferry
