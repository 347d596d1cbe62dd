// engine/train/batch_source.h — what the trainer draws batches from. Token shards (engine/data)
// and the small byte-level corpora below implement it.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

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
class TokenStreamSource final : public BatchSource {
 public:
  TokenStreamSource(std::vector<int32_t> tokens, int B, int T);
  void next(int32_t* inputs, int32_t* targets) override;
  void reset() override { cursor_ = 0; }
  nlohmann::json position() const override { return {{"cursor", cursor_}}; }
  void restore(const nlohmann::json& pos) override;
  size_t size() const { return tokens_.size(); }

 private:
  std::vector<int32_t> tokens_;
  int B_, T_;
  size_t cursor_ = 0;
};

// A deterministic English-like corpus generated from a small grammar: always available, learnable
// (the loss of a working model falls far below that of a uniform guess), byte-level.
std::string synthetic_corpus(size_t approx_bytes, uint64_t seed);

// Bytes of a string as tokens 0..255.
std::vector<int32_t> byte_tokens(const std::string& text);

}  // namespace ferry
