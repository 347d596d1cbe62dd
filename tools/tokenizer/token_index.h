// tools/tokenizer/token_index.h — token bytes → token id, the lookup every piece of text makes first
// (most English words, with their leading space, are one GPT-2 token).
//
// Open addressing over one contiguous pool of token bytes: a lookup hashes the piece once, probes a
// flat array and compares with memcmp — no per-entry allocation, no pointer chasing, which is what
// std::unordered_map costs (measured: it held encoding to about 15 MB/s).
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::tokenizer {

// A fast hash for short byte strings (8 bytes at a time, multiply-xorshift mixing); not for adversarial
// keys, which is fine: the keys are the fixed vocabulary.
inline uint64_t hash_bytes(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size();
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xC2B2AE3D27D4EB4Full);
  auto mix = [&h](uint64_t w) {
    h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
  };
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    mix(w);
  }
  if (n) {
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    mix(w);
  }
  return h * 0x94D049BB133111EBull;
}

class TokenIndex {
 public:
  static constexpr int32_t kAbsent = -1;

  // Adds `bytes` as token `id`; returns false (and changes nothing) when the bytes are already there.
  bool insert(std::string_view bytes, int32_t id);
  int32_t find(std::string_view bytes) const {
    if (slots_.empty()) return kAbsent;
    const uint64_t h = hash_bytes(bytes);
    const uint32_t tag = static_cast<uint32_t>(h >> 32);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.id == kAbsent) return kAbsent;
      if (s.tag == tag && s.length == bytes.size() && std::memcmp(pool_.data() + s.offset, bytes.data(), s.length) == 0) {
        return s.id;
      }
    }
  }
  size_t size() const { return size_; }

 private:
  struct Slot {
    uint32_t tag = 0;  // high hash bits: most mismatches are rejected without touching the pool
    uint32_t offset = 0;
    uint32_t length = 0;
    int32_t id = kAbsent;
  };
  void grow();

  std::string pool_;
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace ferry::tokenizer
