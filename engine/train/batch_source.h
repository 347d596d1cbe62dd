// engine/train/batch_source.h — what the trainer draws batches from. Token shards (engine/data)
// and the small byte-level corpora below implement it.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/data/loader.h"

namespace ferry {

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  // Fills B·T inputs and the B·T targets that follow them (the next token at every position).
  virtual void next(int32_t* inputs, int32_t* targets) = 0;
  // Back to the first batch (validation passes start here every time).
  virtual void reset() = 0;
  // Exact position, for checkpoints; restore() continues from it.
  virtual nlohmann::json position() const = 0;
  virtual void restore(const nlohmann::json& pos) = 0;
};

// Windows of B·T+1 consecutive tokens from an in-memory stream, row after row, wrapping at the end.
// With dp_size > 1 the stream is read in global batches of dp_size·B rows and this source keeps
// rows [dp_rank·B, (dp_rank+1)·B): every rank's cursor stays the same, so one position restores all.
class TokenStreamSource final : public BatchSource {
 public:
  TokenStreamSource(std::vector<int32_t> tokens, int B, int T, int dp_rank = 0, int dp_size = 1);
  void next(int32_t* inputs, int32_t* targets) override;
  void reset() override { cursor_ = 0; }
  nlohmann::json position() const override { return {{"cursor", cursor_}}; }
  void restore(const nlohmann::json& pos) override;
  size_t size() const { return tokens_.size(); }

 private:
  std::vector<int32_t> tokens_;
  int B_, T_;
  int dp_rank_, dp_size_;
  size_t cursor_ = 0;
};

// llm.c token shards through the memory-mapped loader (engine/data/loader.h).
class ShardSource final : public BatchSource {
 public:
  explicit ShardSource(data::LoaderOptions options) : loader_(std::move(options)) {}
  void next(int32_t* inputs, int32_t* targets) override { loader_.next_batch(inputs, targets); }
  void reset() override { loader_.reset(); }
  nlohmann::json position() const override;
  void restore(const nlohmann::json& pos) override;
  const data::TokenLoader& loader() const { return loader_; }

 private:
  data::TokenLoader loader_;
};

// A deterministic English-like corpus generated from a small grammar: always available, learnable
// (the loss of a working model falls far below that of a uniform guess), byte-level.
std::string synthetic_corpus(size_t approx_bytes, uint64_t seed);

// Bytes of a string as tokens 0..255.
std::vector<int32_t> byte_tokens(const std::string& text);

}  // namespace ferry
