// engine/data/eval_windows.h — token shards read the way llm.c's validation loader reads them, for
// measuring a language model's held-out loss.
//
// A window is one batch: B·T + 1 consecutive tokens, row b taking tokens [b·T, b·T + T) as inputs
// and [b·T + 1, b·T + T] as targets. Each shard, in name order, is cut into windows at stride B·T
// from its first token; a shard's tail too short for a whole window is not read (llm.c's
// shard_num_samples). So window k is the same tokens whatever N windows are asked for, and the first
// N windows are what llm.c's validation (val_max_steps = N, same B and T, one process) scores.
//
// Unlike the training loader (loader.h: windows of T + 1 per row, shuffles, DP slices, epochs) this
// reads in order, once, and every token id is checked against the model's vocabulary up front.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/data/shard.h"

namespace ferry::data {

class EvalWindows {
 public:
  // pattern: a folder, glob or file (resolve_shards; a folder contributes its *_val_* shards when it
  // has any, else all *.bin). UserError for a missing pattern, a bad shard, or a token id ≥
  // vocab_size (naming the shard and the position). Zero windows is not an error here: size() says.
  EvalWindows(const std::string& pattern, int B, int T, int vocab_size);

  size_t size() const { return windows_.size(); }  // whole windows in all the shards
  size_t shard_count() const { return shards_.size(); }
  size_t total_tokens() const { return total_tokens_; }
  // The split a folder was read with: "val", or "" (every *.bin).
  const std::string& split() const { return split_; }

  // Window k's B×T inputs and targets (row-major), k < size().
  void read(size_t k, int32_t* inputs, int32_t* targets) const;

 private:
  struct Window {
    uint32_t shard;
    size_t first;  // token index in the shard
  };
  int B_, T_;
  std::string split_;
  std::vector<MappedShard> shards_;
  std::vector<Window> windows_;
  size_t total_tokens_ = 0;
};

}  // namespace ferry::data
