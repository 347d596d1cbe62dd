// tools/tokenizer/byte_pair_merge.h — the byte-pair-encoding core: turning one pre-tokenized piece
// into token ids by repeated merges.
//
// The rule is tiktoken's (which for GPT-2 gives the same ids as OpenAI's original encoder.py): start
// from one token per byte; while some adjacent pair of tokens concatenates to a token that has a merge
// rank, merge the pair whose result has the lowest rank, the leftmost one on a tie.
#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

namespace ferry::tokenizer {

// (left token, right token) → the token their bytes concatenate to, with that token's merge rank.
// Open addressing over a power-of-two table: the lookup sits in the innermost loop of encoding.
class MergeTable {
 public:
  struct Merge {
    int32_t rank;
    int32_t token;
  };
  static constexpr Merge kNone{INT32_MAX, -1};

  void reserve(size_t pairs);
  void insert(int32_t left, int32_t right, Merge merge);
  Merge find(int32_t left, int32_t right) const {
    if (slots_.empty()) return kNone;
    const uint64_t key = pack(left, right);
    for (size_t i = slot_of(key);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == key) return s.merge;
      if (s.key == kEmptyKey) return kNone;
    }
  }
  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmptyKey = ~uint64_t{0};
  struct Slot {
    uint64_t key = kEmptyKey;
    Merge merge = kNone;
  };
  static uint64_t pack(int32_t l, int32_t r) { return (uint64_t(uint32_t(l)) << 32) | uint32_t(r); }
  size_t slot_of(uint64_t key) const { return size_t((key * 0x9E3779B97F4A7C15ull) >> shift_) & mask_; }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  unsigned shift_ = 64;
  size_t size_ = 0;
};

// Appends the ids of `piece` to `out`. byte_tokens[b] is the token of the single byte b.
void byte_pair_merge(std::string_view piece, const int32_t (&byte_tokens)[256], const MergeTable& merges,
                     std::vector<int32_t>& out);

}  // namespace ferry::tokenizer
