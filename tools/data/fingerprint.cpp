// tools/data/fingerprint.cpp
#include "tools/data/fingerprint.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include "base/error.h"

namespace ferry::data {

namespace {

constexpr uint64_t kMultiplier = 0x9E3779B97F4A7C15ull;

uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

uint64_t finalise(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Streaming state, so a file is hashed in blocks with the same result as hashing it whole.
struct Hasher {
  uint64_t h;
  uint64_t length = 0;
  explicit Hasher(uint64_t seed) : h(finalise(seed ^ kMultiplier)) {}

  void words(const char* p, size_t n_words) {
    for (size_t i = 0; i < n_words; ++i) {
      uint64_t w;
      std::memcpy(&w, p + 8 * i, 8);
      h = rotl(h ^ (w * kMultiplier), 29) * 0xFF51AFD7ED558CCDull;
    }
    length += 8 * n_words;
  }
  uint64_t finish(const char* tail, size_t n) {
    uint64_t w = 0;
    std::memcpy(&w, tail, n);
    h = rotl(h ^ (w * kMultiplier), 29) * 0xFF51AFD7ED558CCDull;
    return finalise(h ^ (length + n));
  }
};

}  // namespace

uint64_t fingerprint(std::string_view bytes, uint64_t seed) {
  Hasher hasher(seed);
  const size_t whole = bytes.size() / 8;
  hasher.words(bytes.data(), whole);
  return hasher.finish(bytes.data() + 8 * whole, bytes.size() - 8 * whole);
}

uint64_t fingerprint_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) user_error("cannot read '", path.string(), "': ", std::strerror(errno));
  Hasher hasher(0);
  std::vector<char> block(1 << 20);  // a multiple of 8, so only the last block has a tail
  while (true) {
    in.read(block.data(), static_cast<std::streamsize>(block.size()));
    const size_t got = static_cast<size_t>(in.gcount());
    if (got < block.size()) {
      if (in.bad()) user_error("cannot read '", path.string(), "': read error");
      hasher.words(block.data(), got / 8);
      return hasher.finish(block.data() + got / 8 * 8, got % 8);
    }
    hasher.words(block.data(), block.size() / 8);
  }
}

}  // namespace ferry::data
