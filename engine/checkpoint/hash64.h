// engine/checkpoint/hash64.h — a streaming 64-bit checksum for checkpoint and model files.
//
// Detects corruption (a flipped bit, a torn write), not tampering: not cryptographic. Written here
// rather than borrowed because the GPU machine has no xxhash and the engine must not depend on
// tools/. The value for a byte string never depends on how it was split across update() calls.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ferry {

class Hash64 {
 public:
  explicit Hash64(uint64_t seed = 0) : h_(seed ^ 0x27D4EB2F165667C5ull) {}
  void update(const void* data, size_t bytes);
  // The hash of everything given so far (the object may keep receiving bytes afterwards).
  uint64_t digest() const;

 private:
  void mix(uint64_t word);
  uint64_t h_;
  uint64_t length_ = 0;
  unsigned char tail_[8] = {};
  size_t tail_len_ = 0;
};

inline uint64_t hash64(const void* data, size_t bytes, uint64_t seed = 0) {
  Hash64 h(seed);
  h.update(data, bytes);
  return h.digest();
}

}  // namespace ferry
