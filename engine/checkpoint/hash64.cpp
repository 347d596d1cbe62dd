// engine/checkpoint/hash64.cpp
#include "engine/checkpoint/hash64.h"

#include <cstring>

namespace ferry {

namespace {
constexpr uint64_t kPrime1 = 0x9E3779B185EBCA87ull;
constexpr uint64_t kPrime2 = 0xC2B2AE3D27D4EB4Full;
inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
// SplitMix64's finaliser: every input bit reaches every output bit.
inline uint64_t avalanche(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
}  // namespace

void Hash64::mix(uint64_t word) { h_ = rotl(h_ ^ (word * kPrime2), 31) * kPrime1; }

void Hash64::update(const void* data, size_t bytes) {
  const auto* p = static_cast<const unsigned char*>(data);
  length_ += bytes;
  if (tail_len_) {
    const size_t take = bytes < 8 - tail_len_ ? bytes : 8 - tail_len_;
    std::memcpy(tail_ + tail_len_, p, take);
    tail_len_ += take;
    p += take;
    bytes -= take;
    if (tail_len_ < 8) return;
    uint64_t w;
    std::memcpy(&w, tail_, 8);
    mix(w);
    tail_len_ = 0;
  }
  // Words are read as little-endian host words (ferry builds for little-endian hosts only).
  for (; bytes >= 8; p += 8, bytes -= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    mix(w);
  }
  std::memcpy(tail_, p, bytes);
  tail_len_ = bytes;
}

uint64_t Hash64::digest() const {
  uint64_t h = h_;
  if (tail_len_) {
    unsigned char padded[8] = {};
    std::memcpy(padded, tail_, tail_len_);
    uint64_t w;
    std::memcpy(&w, padded, 8);
    h = rotl(h ^ (w * kPrime2), 31) * kPrime1;
  }
  return avalanche(h ^ length_);
}

}  // namespace ferry
