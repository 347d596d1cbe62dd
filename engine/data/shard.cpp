// engine/data/shard.cpp
#include "engine/data/shard.h"

#include <fcntl.h>
#include <glob.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <utility>

#include "engine/checkpoint/atomic_file.h"
#include "base/error.h"

namespace ferry::data {

// The format is little-endian on disk and we map it as-is.
static_assert(std::endian::native == std::endian::little, "token shards are mapped as little-endian");

namespace fs = std::filesystem;

namespace {

[[noreturn]] void shard_error(const fs::path& path, const std::string& what) {
  user_error("shard '", path.string(), "': ", what);
}

// Closes the descriptor on every path out, including throws.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Checks the header and the size; returns the token count.
size_t validate_layout(const fs::path& path, const unsigned char* bytes, size_t file_bytes) {
  if (file_bytes < kShardHeaderBytes) {
    shard_error(path, str_cat("truncated header: ", file_bytes, " bytes, an llm.c token shard starts with a ",
                              kShardHeaderBytes, "-byte header"));
  }
  std::array<int32_t, 3> head{};
  std::memcpy(head.data(), bytes, sizeof(head));
  if (head[0] != kShardMagic) {
    shard_error(path, str_cat("wrong magic ", head[0], " (expected ", kShardMagic, "): not an llm.c token shard"));
  }
  if (head[1] != kShardVersion) {
    shard_error(path, str_cat("unsupported version ", head[1], " (expected ", kShardVersion, ": uint16 tokens)"));
  }
  if (head[2] < 0) shard_error(path, str_cat("negative token count ", head[2], " in the header"));
  const size_t count = static_cast<size_t>(head[2]);
  const size_t expected = kShardHeaderBytes + count * sizeof(uint16_t);
  if (file_bytes < expected) {
    shard_error(path, str_cat("truncated body: the header says ", count, " tokens (", expected,
                              " bytes with the header) but the file has ", file_bytes, " bytes"));
  }
  if (file_bytes > expected) {
    shard_error(path, str_cat("file size ", file_bytes, " bytes does not match the header's ", count, " tokens (",
                              expected, " bytes with the header)"));
  }
  return count;
}

void validate_tokens(const fs::path& path, const uint16_t* tokens, size_t count, int vocab_size) {
  // Max first (a branch-free pass the compiler vectorizes); locate only when something is wrong.
  uint16_t largest = 0;
  for (size_t i = 0; i < count; ++i) largest = std::max(largest, tokens[i]);
  if (count == 0 || largest < vocab_size) return;
  const size_t at = static_cast<size_t>(std::find_if(tokens, tokens + count, [&](uint16_t t) { return t >= vocab_size; }) - tokens);
  shard_error(path, str_cat("token id ", tokens[at], " at position ", at, " is outside the vocabulary (size ",
                            vocab_size, ")"));
}

void check_vocab_size(int vocab_size) {
  if (vocab_size <= 0 || vocab_size > 65536) {
    user_error("vocab size ", vocab_size, " cannot be stored in uint16 token shards (must be 1..65536)");
  }
}

bool has_glob_characters(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

}  // namespace

void write_shard(const fs::path& path, std::span<const uint16_t> tokens) {
  if (tokens.size() > kMaxShardTokens) {
    shard_error(path, str_cat(tokens.size(), " tokens do not fit one shard (at most ", kMaxShardTokens, ")"));
  }
  std::array<int32_t, kShardHeaderInts> header{};
  header[0] = kShardMagic;
  header[1] = kShardVersion;
  header[2] = static_cast<int32_t>(tokens.size());

  // The one atomic write path (engine/checkpoint/atomic_file.h): a temporary beside the shard, fsync,
  // rename over it, fsync the folder. A failure or a kill at any point leaves an existing shard whole.
  AtomicFile out(path);
  out.write(header.data(), kShardHeaderBytes);
  out.write(tokens.data(), tokens.size_bytes());
  out.commit();
}

void write_shard(const fs::path& path, std::span<const int32_t> tokens, int vocab_size) {
  check_vocab_size(vocab_size);
  std::vector<uint16_t> narrow(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= vocab_size) {
      shard_error(path, str_cat("token id ", tokens[i], " at position ", i, " is outside the vocabulary (size ",
                                vocab_size, ")"));
    }
    narrow[i] = static_cast<uint16_t>(tokens[i]);
  }
  write_shard(path, narrow);
}

MappedShard::MappedShard(const fs::path& path, int vocab_size) : path_(path) {
  check_vocab_size(vocab_size);
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) shard_error(path, str_cat("cannot open: ", std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) shard_error(path, str_cat("cannot stat: ", std::strerror(errno)));
  if (!S_ISREG(st.st_mode)) shard_error(path, "cannot read: not a regular file");
  const size_t file_bytes = static_cast<size_t>(st.st_size);
  if (file_bytes < kShardHeaderBytes) {
    validate_layout(path, nullptr, file_bytes);  // throws the truncated-header error
  }
  map_ = ::mmap(nullptr, file_bytes, PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    shard_error(path, str_cat("cannot map: ", std::strerror(errno)));
  }
  map_bytes_ = file_bytes;
  try {
    const auto* bytes = static_cast<const unsigned char*>(map_);
    count_ = validate_layout(path, bytes, file_bytes);
    // The header is 1024 bytes, so the token array is suitably aligned inside the page-aligned map.
    tokens_ = reinterpret_cast<const uint16_t*>(bytes + kShardHeaderBytes);
    validate_tokens(path, tokens_, count_, vocab_size);
  } catch (...) {
    release();
    throw;
  }
}

MappedShard::~MappedShard() { release(); }

MappedShard::MappedShard(MappedShard&& other) noexcept
    : path_(std::move(other.path_)),
      map_(std::exchange(other.map_, nullptr)),
      map_bytes_(std::exchange(other.map_bytes_, 0)),
      tokens_(std::exchange(other.tokens_, nullptr)),
      count_(std::exchange(other.count_, 0)) {}

MappedShard& MappedShard::operator=(MappedShard&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    map_ = std::exchange(other.map_, nullptr);
    map_bytes_ = std::exchange(other.map_bytes_, 0);
    tokens_ = std::exchange(other.tokens_, nullptr);
    count_ = std::exchange(other.count_, 0);
  }
  return *this;
}

void MappedShard::release() {
  if (map_) ::munmap(map_, map_bytes_);
  map_ = nullptr;
  map_bytes_ = 0;
  tokens_ = nullptr;
  count_ = 0;
}

std::vector<uint16_t> read_shard(const fs::path& path, int vocab_size) {
  const MappedShard shard(path, vocab_size);
  return {shard.tokens().begin(), shard.tokens().end()};
}

std::vector<fs::path> resolve_shards(const std::string& dir_or_glob, const std::string& split) {
  if (dir_or_glob.empty()) user_error("no data path given (a folder of token shards or a glob)");
  std::string pattern = dir_or_glob;
  std::error_code ec;
  const bool is_folder = fs::is_directory(dir_or_glob, ec);
  if (is_folder) {
    pattern = (fs::path(dir_or_glob) / (split.empty() ? "*.bin" : "*_" + split + "_*.bin")).string();
  } else if (!has_glob_characters(dir_or_glob)) {
    // One named file: the shard reader reports it if it cannot be opened.
    if (!fs::exists(dir_or_glob, ec)) user_error("data path '", dir_or_glob, "' does not exist");
    return {fs::path(dir_or_glob)};
  }

  glob_t matches{};
  const int rc = ::glob(pattern.c_str(), 0, nullptr, &matches);
  std::vector<fs::path> files;
  if (rc == 0) {
    for (size_t i = 0; i < matches.gl_pathc; ++i) files.emplace_back(matches.gl_pathv[i]);
  }
  ::globfree(&matches);
  if (rc == GLOB_ABORTED) user_error("data path '", dir_or_glob, "' cannot be read");
  if (files.empty()) {
    user_error("no token shards match '", pattern, "'", is_folder && !split.empty() ? str_cat(" (the ", split, " split)") : "");
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace ferry::data
