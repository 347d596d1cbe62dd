// engine/checkpoint/atomic_file.h — write a file so that readers see the old contents or the new,
// never a mixture: a temporary file beside the target, fsync, rename over the target, fsync the
// folder. If anything fails (or the process dies) before the rename, the target is untouched and
// the temporary file is removed (or, after a kill, left with a `.tmp.` name nothing reads).
#pragma once
#include <cstddef>
#include <filesystem>
#include <string_view>

namespace ferry {

class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path target);
  ~AtomicFile();  // removes the temporary file unless commit() succeeded
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t bytes);
  void write(std::string_view s) { write(s.data(), s.size()); }
  // fsync, rename over the target, fsync the folder. Throws UserError naming the target on failure.
  void commit();

  const std::filesystem::path& target() const { return target_; }

 private:
  std::filesystem::path target_, temp_;
  int fd_ = -1;
  bool committed_ = false;
};

// Convenience: the whole contents at once.
void write_file_atomically(const std::filesystem::path& target, std::string_view contents);

}  // namespace ferry
