// tools/tokenizer/pretokenize.h — GPT-2's pre-tokenization: cutting UTF-8 text into the pieces that
// byte-pair encoding then works on, one at a time (BPE never merges across a piece boundary).
//
// The pieces are exactly the matches of GPT-2's pattern, applied left to right:
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// with \p{L}, \p{N} and \s (White_Space) from the Unicode tables in unicode_tables.inc. The pattern is
// hand-compiled (no regex library: the GPU machine has none) into the scan in pretokenize.cpp.
// A byte that is not part of a valid UTF-8 sequence counts as one character outside all three classes,
// so any byte string splits into pieces whose concatenation is the input.
#pragma once
#include <cstddef>
#include <string_view>

namespace ferry::tokenizer {

enum class CodePointClass : unsigned char { kOther = 0, kLetter, kNumber, kSpace };

// The class of one code point (kOther for anything unassigned, punctuation, symbols, emoji...).
CodePointClass classify(char32_t cp);

// Walks the pieces of `text` in order:  for (Gpt2PieceSplitter s(text); s.next(piece);) ...
class Gpt2PieceSplitter {
 public:
  explicit Gpt2PieceSplitter(std::string_view text) : text_(text) {}
  // Sets `piece` to the next piece (a view into the text) and returns true; false at the end.
  bool next(std::string_view& piece);

 private:
  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace ferry::tokenizer
