// engine/data/loader.cpp
#include "engine/data/loader.h"

#include <algorithm>
#include <numeric>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "engine/random.h"

namespace ferry::data {

namespace {

// A seed for one (epoch, stream) pair, so that any shard's order in any epoch can be recomputed from
// the position alone, without replaying the epochs before it.
uint64_t derive_seed(uint64_t seed, uint64_t epoch, uint64_t stream) {
  uint64_t h = Rng(seed).next_u64();
  h = Rng(h ^ epoch).next_u64();
  return Rng(h ^ stream).next_u64();
}

// Fisher–Yates with the engine's generator: the same permutation on every compiler and library
// (std::shuffle's use of the generator is implementation-defined).
void shuffle_in_place(std::vector<uint32_t>& v, uint64_t seed) {
  Rng rng(seed);
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);
}

constexpr uint64_t kShardOrderStream = ~uint64_t{0};

}  // namespace

void to_json(nlohmann::json& j, const LoaderPosition& p) {
  j = nlohmann::json{{"epoch", p.epoch},
                     {"shard_slot", p.shard_slot},
                     {"window_slot", p.window_slot},
                     {"T", p.T},
                     {"shuffle", p.shuffle},
                     {"seed", p.seed},
                     {"shard_count", p.shard_count},
                     {"total_tokens", p.total_tokens}};
}

void from_json(const nlohmann::json& j, LoaderPosition& p) {
  if (!j.is_object()) user_error("loader position: expected a JSON object, got ", j.type_name());
  auto field = [&](const char* name, auto& out) {
    if (!j.contains(name)) user_error("loader position: missing field '", name, "'");
    try {
      j.at(name).get_to(out);
    } catch (const nlohmann::json::exception&) {
      user_error("loader position: field '", name, "' has the wrong type (", j.at(name).type_name(), ")");
    }
  };
  field("epoch", p.epoch);
  field("shard_slot", p.shard_slot);
  field("window_slot", p.window_slot);
  field("T", p.T);
  field("shuffle", p.shuffle);
  field("seed", p.seed);
  field("shard_count", p.shard_count);
  field("total_tokens", p.total_tokens);
}

TokenLoader::TokenLoader(LoaderOptions options) : options_(std::move(options)) {
  const auto& o = options_;
  if (o.B <= 0) user_error("loader: batch size B must be positive, got ", o.B);
  if (o.T <= 0) user_error("loader: sequence length T must be positive, got ", o.T);
  if (o.dp_size <= 0) user_error("loader: dp_size must be positive, got ", o.dp_size);
  if (o.dp_rank < 0 || o.dp_rank >= o.dp_size) {
    user_error("loader: dp_rank ", o.dp_rank, " is outside [0, ", o.dp_size, ")");
  }

  for (const auto& path : resolve_shards(o.pattern, o.split)) {
    shards_.emplace_back(path, o.vocab_size);
    total_tokens_ += shards_.back().size();
    total_windows_ += windows_in(shards_.size() - 1);
  }
  if (shards_.size() > UINT32_MAX) user_error("loader: '", o.pattern, "' matches too many shards");
  const uint64_t global_rows = static_cast<uint64_t>(o.B) * static_cast<uint64_t>(o.dp_size);
  if (total_windows_ < global_rows) {
    user_error("loader: the shards of '", o.pattern, "' hold ", total_tokens_, " tokens, ", total_windows_,
               " windows of T+1 = ", o.T + 1, " tokens, fewer than one global batch of dp_size x B = ", global_rows,
               " rows");
  }
  reset();
}

size_t TokenLoader::windows_in(size_t shard) const {
  const size_t n = shards_[shard].size();
  const size_t T = static_cast<size_t>(options_.T);
  return n > T ? (n - 1) / T : 0;
}

size_t TokenLoader::steps_per_epoch() const {
  return total_windows_ / (static_cast<size_t>(options_.B) * static_cast<size_t>(options_.dp_size));
}

void TokenLoader::enter(uint64_t epoch, uint64_t shard_slot) {
  if (epoch != order_epoch_) {
    shard_order_.resize(shards_.size());
    std::iota(shard_order_.begin(), shard_order_.end(), 0u);
    if (options_.shuffle) shuffle_in_place(shard_order_, derive_seed(options_.seed, epoch, kShardOrderStream));
    order_epoch_ = epoch;
  }
  cursor_.epoch = epoch;
  cursor_.shard_slot = shard_slot;
  window_order_.clear();
  if (options_.shuffle) {
    const size_t shard = current_shard();
    window_order_.resize(windows_in(shard));
    std::iota(window_order_.begin(), window_order_.end(), 0u);
    shuffle_in_place(window_order_, derive_seed(options_.seed, epoch, shard));
  }
}

void TokenLoader::settle() {
  // Terminates: the constructor guarantees at least one shard has a window.
  while (cursor_.window_slot >= windows_in(current_shard())) {
    cursor_.window_slot = 0;
    if (cursor_.shard_slot + 1 < shards_.size()) {
      enter(cursor_.epoch, cursor_.shard_slot + 1);
    } else {
      enter(cursor_.epoch + 1, 0);
    }
  }
}

void TokenLoader::skip(uint64_t windows) {
  while (windows > 0) {
    const uint64_t left_here = windows_in(current_shard()) - cursor_.window_slot;
    if (windows < left_here) {
      cursor_.window_slot += windows;
      return;
    }
    windows -= left_here;
    cursor_.window_slot += left_here;
    settle();
  }
}

void TokenLoader::next_batch(int32_t* inputs, int32_t* targets) {
  const size_t B = static_cast<size_t>(options_.B);
  const size_t T = static_cast<size_t>(options_.T);
  const uint64_t before = static_cast<uint64_t>(options_.dp_rank) * B;
  const uint64_t after = static_cast<uint64_t>(options_.dp_size - options_.dp_rank - 1) * B;
  skip(before);
  for (size_t row = 0; row < B; ++row) {
    const uint64_t window = options_.shuffle ? window_order_[cursor_.window_slot] : cursor_.window_slot;
    const uint16_t* w = shards_[current_shard()].tokens().data() + window * T;
    int32_t* in = inputs + row * T;
    int32_t* tg = targets + row * T;
    for (size_t t = 0; t < T; ++t) {
      in[t] = w[t];
      tg[t] = w[t + 1];
    }
    skip(1);
  }
  skip(after);
}

LoaderPosition TokenLoader::position() const {
  LoaderPosition p;
  p.epoch = cursor_.epoch;
  p.shard_slot = cursor_.shard_slot;
  p.window_slot = cursor_.window_slot;
  p.T = options_.T;
  p.shuffle = options_.shuffle;
  p.seed = options_.seed;
  p.shard_count = shards_.size();
  p.total_tokens = total_tokens_;
  return p;
}

void TokenLoader::restore(const LoaderPosition& p) {
  auto mismatch = [&](const char* what, auto saved, auto here) {
    user_error("loader position: saved for ", what, " ", saved, " but this loader has ", here, " (data '",
               options_.pattern, "')");
  };
  if (p.T != options_.T) mismatch("T =", p.T, options_.T);
  if (p.shuffle != options_.shuffle) mismatch("shuffle =", p.shuffle, options_.shuffle);
  if (p.seed != options_.seed) mismatch("seed", p.seed, options_.seed);
  if (p.shard_count != shards_.size()) mismatch("a shard count of", p.shard_count, shards_.size());
  if (p.total_tokens != total_tokens_) mismatch("a token total of", p.total_tokens, total_tokens_);
  enter(p.epoch, 0);  // draws this epoch's shard order, so shard_slot can be checked against it
  if (p.shard_slot >= shards_.size()) user_error("loader position: shard_slot ", p.shard_slot, " out of range");
  enter(p.epoch, p.shard_slot);
  if (p.window_slot >= windows_in(current_shard())) {
    user_error("loader position: window_slot ", p.window_slot, " out of range for shard '",
               shards_[current_shard()].path().string(), "'");
  }
  cursor_.window_slot = p.window_slot;
}

void TokenLoader::reset() {
  cursor_ = Cursor{};
  enter(0, 0);
  settle();
}

}  // namespace ferry::data
