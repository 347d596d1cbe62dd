// tools/tasks/vocab.h — the model's token ids for a task: GPT-2 BPE pieces, all 50,257 of them or a
// compact vocabulary of one of two kinds.
//
// Why compact: on a 2-core CPU a full GPT-2 vocabulary makes the language-model head 8× the cost of
// a small trunk. Two kinds, both stored with the model, so a fine-tuned model reads text exactly as
// its pretraining did:
//   bpe       GPT-2's BPE stopped after its first size − 259 merges (Gpt2Tokenizer::with_merge_limit):
//             the 256 bytes and the earliest-learned tokens. Any text encodes losslessly, rare words
//             as several pieces — names and tweets included (the default).
//   frequent  the size − 3 most frequent GPT-2 pieces of a corpus, GPT-2's own segmentation, rarer
//             pieces mapped to <unk> (30% of WNUT-17's tweet pieces with 4,096 kept from prose).
//   compact ids: 0 <|endoftext|> (separator and padding), 1 <unk>, 2 <mask>, 3.. kept pieces
//   gpt2 ids:    GPT-2's own; <mask> = <unk> = <|endoftext|> (50256)
#pragma once
#include <cstdint>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/tokenizer/gpt2_tokenizer.h"

namespace ferry::tasks {

class TaskVocab {
 public:
  static TaskVocab gpt2();
  // The `size` − 3 most frequent GPT-2 ids among `counts` (ties: lower id first).
  static TaskVocab compact_from_counts(const std::vector<int64_t>& counts, int size);
  // `size` ids in all: the 256 byte tokens and the tokens of GPT-2's first size − 259 merges.
  static TaskVocab bpe(int size);
  static TaskVocab from_json(const nlohmann::json& j);  // UserError on a malformed entry
  nlohmann::json to_json() const;

  int size() const { return compact_ ? static_cast<int>(kept_.size()) + kReserved : tokenizer::Gpt2Tokenizer::kVocabSize; }
  bool compact() const { return compact_; }
  int32_t separator() const { return compact_ ? 0 : tokenizer::Gpt2Tokenizer::kEndOfText; }
  int32_t pad() const { return separator(); }
  int32_t unk() const { return compact_ ? 1 : tokenizer::Gpt2Tokenizer::kEndOfText; }
  int32_t mask() const { return compact_ ? 2 : tokenizer::Gpt2Tokenizer::kEndOfText; }
  // The first id of an ordinary text piece (MLM's random replacements are drawn from [this, size)).
  int32_t first_piece() const { return compact_ ? kReserved : 0; }

  int32_t from_gpt2(int32_t id) const;
  // The GPT-2 id a model id stands for; −1 for the separator, <unk>, <mask> and ids out of range.
  int32_t to_gpt2(int32_t model_id) const;
  // `tok` is GPT-2's full tokenizer; a bpe vocabulary encodes with its own merge-limited one instead.
  std::vector<int32_t> encode(const tokenizer::Gpt2Tokenizer& tok, std::string_view text) const;

 private:
  static constexpr int kReserved = 3;
  bool compact_ = false;
  int merges_ = -1;  // bpe kind: encode with GPT-2's first merges_ merges
  std::vector<int32_t> kept_;                     // model id − kReserved → GPT-2 id
  std::unordered_map<int32_t, int32_t> to_model_;  // GPT-2 id → model id
  std::shared_ptr<const tokenizer::Gpt2Tokenizer> limited_;  // bpe kind: GPT-2's, stopped after merges_ merges
};

// Head and tail of a long sequence: the first max_len/4 ids and the last max_len − max_len/4 (a
// review's verdict tends to sit at its end); unchanged when it fits.
std::vector<int32_t> head_and_tail(const std::vector<int32_t>& ids, int max_len);

// A sentence's words as sub-tokens, each word encoded on its own (with GPT-2's leading space after
// the first word); `first_token[w]` is the position of word w's first sub-token, −1 for words that
// did not fit in max_len (or encode to nothing).
struct AlignedSentence {
  std::vector<int32_t> ids;
  std::vector<int> first_token;
};
AlignedSentence align_words(const tokenizer::Gpt2Tokenizer& tok, const TaskVocab& vocab,
                            const std::vector<std::string>& words, int max_len);

}  // namespace ferry::tasks
