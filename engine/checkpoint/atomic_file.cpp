// engine/checkpoint/atomic_file.cpp
#include "engine/checkpoint/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string>

#include "base/error.h"

namespace ferry {

namespace {

// FERRY_TEST_KILL_IN_WRITE, read once: the phase ("bytes=N" split into phase "bytes" and N) and the
// file name it applies to.
struct KillPoint {
  std::string phase, file;
  uint64_t bytes = 0;
  bool armed = false;
};

const KillPoint& kill_point() {
  static const KillPoint k = [] {
    KillPoint p;
    const char* v = std::getenv("FERRY_TEST_KILL_IN_WRITE");
    if (!v) return p;
    const std::string s(v);
    const size_t colon = s.find(':');
    if (colon == std::string::npos) return p;
    p.phase = s.substr(0, colon);
    p.file = s.substr(colon + 1);
    if (p.phase.rfind("bytes=", 0) == 0) {
      p.bytes = std::strtoull(p.phase.c_str() + 6, nullptr, 10);
      p.phase = "bytes";
    }
    p.armed = true;
    return p;
  }();
  return k;
}

}  // namespace

void test_kill_point(const std::filesystem::path& file, std::string_view phase) {
  const KillPoint& k = kill_point();
  if (k.armed && phase == k.phase && file.filename() == k.file) ::raise(SIGKILL);
}

AtomicFile::AtomicFile(std::filesystem::path target) : target_(std::move(target)) {
  const auto parent = target_.has_parent_path() ? target_.parent_path() : std::filesystem::path(".");
  std::error_code ec;
  std::filesystem::create_directories(parent, ec);
  temp_ = parent / (target_.filename().string() + ".tmp." + std::to_string(::getpid()));
  fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) user_error(target_.string(), ": cannot create a temporary file beside it (", std::strerror(errno), ")");
  test_kill_point(target_, "created");
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) {
    std::error_code ec;
    std::filesystem::remove(temp_, ec);
  }
}

void AtomicFile::write(const void* data, size_t bytes) {
  const auto* p = static_cast<const char*>(data);
  const KillPoint& k = kill_point();
  if (k.armed && k.phase == "bytes" && target_.filename() == k.file && k.bytes >= written_ &&
      k.bytes - written_ <= bytes) {
    write_all(p, static_cast<size_t>(k.bytes - written_));
    test_kill_point(target_, "bytes");
  }
  write_all(p, bytes);
  written_ += bytes;
}

void AtomicFile::write_all(const char* p, size_t bytes) {
  while (bytes > 0) {
    const ssize_t n = ::write(fd_, p, bytes);
    if (n < 0) {
      if (errno == EINTR) continue;
      user_error(target_.string(), ": write failed (", std::strerror(errno), "); the previous file is untouched");
    }
    p += n;
    bytes -= static_cast<size_t>(n);
  }
}

void AtomicFile::commit() {
  if (::fsync(fd_) != 0)
    user_error(target_.string(), ": fsync failed (", std::strerror(errno), "); the previous file is untouched");
  test_kill_point(target_, "synced");
  ::close(fd_);
  fd_ = -1;
  if (::rename(temp_.c_str(), target_.c_str()) != 0)
    user_error(target_.string(), ": rename failed (", std::strerror(errno), "); the previous file is untouched");
  committed_ = true;
  test_kill_point(target_, "renamed");
  const auto parent = target_.has_parent_path() ? target_.parent_path() : std::filesystem::path(".");
  const int dir = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);  // makes the rename itself durable
    ::close(dir);
  }
  test_kill_point(target_, "committed");
}

void write_file_atomically(const std::filesystem::path& target, std::string_view contents) {
  AtomicFile f(target);
  f.write(contents);
  f.commit();
}

}  // namespace ferry
