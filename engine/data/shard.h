// engine/data/shard.h — token shards in llm.c's layout, so shards written by llm.c's data scripts
// load here and ours load there.
//
// Layout (little-endian): a 1024-byte header of 256 int32 — [0] = 20240520 (magic), [1] = 1 (version),
// [2] = token count, the rest zero — then `count` uint16 token ids.
//
// Every problem with a shard is a ferry::UserError of one line that starts with the shard's path:
// wrong magic or version, a header or body shorter than the header says, trailing bytes, a token id
// outside the vocabulary, a path that cannot be opened, a pattern that matches no shard.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace ferry::data {

inline constexpr int32_t kShardMagic = 20240520;
inline constexpr int32_t kShardVersion = 1;
inline constexpr size_t kShardHeaderInts = 256;
inline constexpr size_t kShardHeaderBytes = kShardHeaderInts * sizeof(int32_t);
// The count field is an int32; a shard cannot hold more.
inline constexpr size_t kMaxShardTokens = 0x7fffffff;

// Writes a shard atomically (engine/checkpoint/atomic_file.h): into a temporary file beside `path`,
// fsync, rename over `path`, fsync the folder. A failure at any point leaves an existing shard at
// `path` untouched.
void write_shard(const std::filesystem::path& path, std::span<const uint16_t> tokens);

// The same from int32 ids (what the tokenizer produces); every id must lie in [0, vocab_size) and
// vocab_size must fit uint16 storage (≤ 65536).
void write_shard(const std::filesystem::path& path, std::span<const int32_t> tokens, int vocab_size);

// A read-only memory map of one validated shard. Opening checks the header, the file size and every
// token id against vocab_size (one pass over the tokens, bound by reading the file), so a bad id is
// reported at load time, not in the middle of a run.
class MappedShard {
 public:
  MappedShard(const std::filesystem::path& path, int vocab_size);
  ~MappedShard();
  MappedShard(MappedShard&& other) noexcept;
  MappedShard& operator=(MappedShard&& other) noexcept;
  MappedShard(const MappedShard&) = delete;
  MappedShard& operator=(const MappedShard&) = delete;

  std::span<const uint16_t> tokens() const { return {tokens_, count_}; }
  size_t size() const { return count_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  void release();

  std::filesystem::path path_;
  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  const uint16_t* tokens_ = nullptr;
  size_t count_ = 0;
};

// Reads and validates a whole shard into memory (tools and tests; the loader maps instead).
std::vector<uint16_t> read_shard(const std::filesystem::path& path, int vocab_size);

// The shard files that `dir_or_glob` names, sorted by name:
//  - a folder: its files named `*_<split>_*.bin` (llm.c's `<name>_train_000001.bin` convention), or all
//    `*.bin` files when split is empty;
//  - a glob (`data/corpus/*_val_*.bin`): the files it matches;
//  - a plain path: that one file.
// Throws UserError when nothing matches or the path does not exist.
std::vector<std::filesystem::path> resolve_shards(const std::string& dir_or_glob, const std::string& split = "");

}  // namespace ferry::data
