// engine/checkpoint/atomic_file.h — write a file so that readers see the old contents or the new,
// never a mixture: a temporary file beside the target, fsync, rename over the target, fsync the
// folder. If anything fails (or the process dies) before the rename, the target is untouched and
// the temporary file is removed (or, after a kill, left with a `.tmp.` name nothing reads).
#pragma once
#include <cstddef>
#include <cstdint>
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
  void write_all(const char* p, size_t bytes);

  std::filesystem::path target_, temp_;
  int fd_ = -1;
  uint64_t written_ = 0;  // bytes in the temporary file so far (for the bytes=N kill point)
  bool committed_ = false;
};

// Convenience: the whole contents at once.
void write_file_atomically(const std::filesystem::path& target, std::string_view contents);

// Test-only kill points (tests/data/crash_consistency_test.cpp). With FERRY_TEST_KILL_IN_WRITE set to
// "<phase>:<file name>" the process SIGKILLs itself at that point of writing (or deleting) the file
// of that name; unset, this costs one comparison. Phases, in the order a write passes them:
//   created    the temporary file exists, empty
//   bytes=N    the first N bytes of the contents are in the temporary file
//   synced     the temporary file is fsynced, not yet renamed
//   renamed    renamed over the target, the folder not yet fsynced
//   committed  the folder fsynced
//   deleted    (prune_checkpoints) right after the file was removed
void test_kill_point(const std::filesystem::path& file, std::string_view phase);

}  // namespace ferry
