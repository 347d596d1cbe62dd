// engine/data/loader.h — batches of token windows from memory-mapped shards, one data-parallel
// rank's slice at a time.
//
// The stream. Each shard is cut into windows of T+1 tokens at stride T (window k covers tokens
// [kT, kT+T], so the target of a window's last position is the next window's first input, as in
// llm.c); the tail of a shard shorter than a window is not used. An epoch visits every window once:
// the shards in order (or in a seeded permutation per epoch), and inside each shard its windows in
// order (or in a seeded permutation per epoch and shard). Epochs follow each other without a seam.
//
// The global batch of a step is the next dp_size·B windows of the stream; rank r takes rows
// [r·B, (r+1)·B) of it. So the ranks' slices are disjoint, their union is the batch one rank would
// read with B' = dp_size·B, and every rank's position after a step is the same — one saved position
// restores all of them (and may even be restored with another dp_size or B; T must match).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "engine/data/shard.h"

namespace ferry::data {

struct LoaderOptions {
  std::string pattern;           // a folder, glob or file (resolve_shards)
  std::string split = "train";   // which `<name>_<split>_NNNNNN.bin` files a folder contributes
  int B = 0;                     // rows per rank
  int T = 0;                     // tokens per row
  int dp_rank = 0;
  int dp_size = 1;
  bool shuffle = false;
  uint64_t seed = 0;
  int vocab_size = 50257;
};

// Where the stream stands: the next window to read. The remaining fields say which stream the
// position belongs to; restore() refuses a position from another one.
struct LoaderPosition {
  uint64_t epoch = 0;
  uint64_t shard_slot = 0;   // index into this epoch's shard order
  uint64_t window_slot = 0;  // index into that shard's window order

  int T = 0;
  bool shuffle = false;
  uint64_t seed = 0;
  uint64_t shard_count = 0;
  uint64_t total_tokens = 0;

  bool operator==(const LoaderPosition&) const = default;
};

void to_json(nlohmann::json& j, const LoaderPosition& p);
// Throws UserError naming the field that is missing or has the wrong type.
void from_json(const nlohmann::json& j, LoaderPosition& p);

class TokenLoader {
 public:
  // Resolves, maps and validates every shard; throws UserError for bad options or shards, and when
  // the shards hold fewer windows than one global batch (dp_size·B).
  explicit TokenLoader(LoaderOptions options);

  // Fills this rank's B×T inputs and targets (row-major; targets are the inputs shifted by one).
  void next_batch(int32_t* inputs, int32_t* targets);

  LoaderPosition position() const;
  void restore(const LoaderPosition& position);
  // Back to the first window of epoch 0 (a validation pass starts here every time).
  void reset();

  const LoaderOptions& options() const { return options_; }
  size_t shard_count() const { return shards_.size(); }
  size_t total_tokens() const { return total_tokens_; }
  size_t windows_per_epoch() const { return total_windows_; }
  // Whole global batches in one epoch (a full validation pass is this many steps).
  size_t steps_per_epoch() const;

 private:
  struct Cursor {
    uint64_t epoch = 0;
    uint64_t shard_slot = 0;
    uint64_t window_slot = 0;
  };

  void enter(uint64_t epoch, uint64_t shard_slot);
  void settle();  // moves the cursor off exhausted (or empty) shards, across epochs
  void skip(uint64_t windows);
  size_t current_shard() const { return shard_order_[cursor_.shard_slot]; }
  size_t windows_in(size_t shard) const;

  LoaderOptions options_;
  std::vector<MappedShard> shards_;
  size_t total_tokens_ = 0;
  size_t total_windows_ = 0;

  Cursor cursor_;
  uint64_t order_epoch_ = ~uint64_t{0};  // the epoch shard_order_ was drawn for
  std::vector<uint32_t> shard_order_;
  std::vector<uint32_t> window_order_;   // the current shard's, when shuffling
};

}  // namespace ferry::data
