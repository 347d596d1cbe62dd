// tools/data/fingerprint.h — a fast 64-bit content hash: tells whether a corpus input changed since the
// last `ferry data prepare`, and draws stable per-document decisions (split, IMDB pool) from text.
//
// Not cryptographic; a change detector. Its value is part of the corpus manifest and of the IMDB
// pool's definition, so the function must never change (a change would silently move reviews
// between the pretraining pool and the sentiment test split).
#pragma once
#include <cstdint>
#include <filesystem>
#include <string_view>

namespace ferry::data {

// 8 bytes at a time (multiply–rotate) as little-endian words (ferry builds for little-endian hosts
// only), the tail zero-padded, the length mixed in, SplitMix64's finaliser at the end.
uint64_t fingerprint(std::string_view bytes, uint64_t seed = 0);

// The fingerprint of a file's whole contents; throws UserError naming the file if it cannot be read.
uint64_t fingerprint_file(const std::filesystem::path& path);

// A uniform number in [0, 1) from a fingerprint (its top 53 bits).
inline double unit_interval(uint64_t h) { return static_cast<double>(h >> 11) * 0x1.0p-53; }

}  // namespace ferry::data
