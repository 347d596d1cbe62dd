// engine/generate/kv_cache.h — GPT decoding with a key/value cache: each prompt is run once
// (prefill, the full-sequence kernels), its keys and values kept per layer; every later token is
// one row per sequence through the blocks, its attention reading the cache
// (kernels/attention_decode.h) instead of recomputing the whole context.
//
// This is a forward-only path beside the static graph: its state (the cache and each row's length)
// changes every step, which a graph built once for fixed (B, T) does not model. It calls the same
// CPU kernels as the graph's ops, in the same order, so its logits equal the graph's full
// recomputation up to the matmuls' rounding on different row counts (tested token for token).
//
// Rows are independent sequences of different lengths; beam search reorders them (reorder()).
#pragma once
#include <cstdint>
#include <vector>

#include "engine/generate/sampler.h"
#include "engine/model/gpt.h"
#include "engine/random.h"

namespace ferry {

class KvCacheDecoder {
 public:
  // flat: parameters in build_gpt's flat order (the table of a build_gpt graph of this config).
  // rows: sequences decoded together; max_len: positions per row (≤ c.max_seq_len).
  KvCacheDecoder(const GptConfig& c, std::vector<float> flat, int rows, int max_len);

  int rows() const { return rows_; }
  int max_len() const { return max_len_; }
  int vocab() const { return config_.vocab_size; }
  int length(int row) const { return lengths_[row]; }

  // Starts `row` over with `prompt` (1 ≤ size ≤ max_len): runs it through the model, fills the
  // row's cache, and returns the logits [V] of its last position.
  std::vector<float> prefill(int row, const std::vector<int32_t>& prompt);
  // Appends tokens[r] to every row r in `active` (each must have room: length < max_len) and
  // returns their next-token logits, [active.size(), V] in the order of `active`.
  std::vector<float> step(const std::vector<int>& active, const std::vector<int32_t>& tokens);
  // Row r takes over the cache and length that row source[r] had (beam search keeps the survivors).
  void reorder(const std::vector<int>& source);

 private:
  struct Block {
    const float *ln1w, *ln1b, *qkvw, *qkvb, *projw, *projb, *ln2w, *ln2b, *fcw, *fcb, *fc2w, *fc2b;
  };
  // Runs N positions through the blocks: x [N,C] holds their embeddings; after each block's qkv
  // matmul, `attend` stores K/V and writes the attention output for those N rows.
  template <typename Attend>
  void blocks(std::vector<float>& x, int N, Attend attend, std::vector<float>& logits_of_last, bool all_rows);
  float* k_cache(int layer) { return kv_.data() + static_cast<size_t>(layer) * 2 * layer_stride_; }
  float* v_cache(int layer) { return k_cache(layer) + layer_stride_; }

  GptConfig config_;
  std::vector<float> params_;
  const float *wte_, *wpe_, *lnfw_, *lnfb_, *head_;
  std::vector<Block> blocks_;
  int rows_, max_len_;
  size_t layer_stride_;  // rows · NH · max_len · HS
  std::vector<float> kv_, kv_scratch_;
  std::vector<int32_t> lengths_;
};

// Greedy / temperature / top-k decoding of many prompts at once with the cache; each row stops after
// o.stop_token or o.max_new_tokens (or when the row is full). Returns the new tokens of each prompt.
std::vector<std::vector<int32_t>> generate_cached(const GptConfig& c, const std::vector<float>& flat,
                                                  const std::vector<std::vector<int32_t>>& prompts,
                                                  const SamplingOptions& o, Rng& rng, int max_len);

}  // namespace ferry
