// tests/support/support.h — what every suite shares: random inputs, temporary folders, running
// the `ferry` binary, and skipping GPU tests cleanly on a machine without one.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "engine/device.h"

namespace ferry::test {

// Fresh random values each run unless FERRY_TEST_SEED is set; the seed is printed on failure.
uint64_t test_seed();

template <typename T>
std::vector<T> random_vector(size_t n, std::mt19937_64& rng, double lo = -1.0, double hi = 1.0) {
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(d(rng));
  return v;
}

struct CommandResult {
  int exit_code;
  std::string out;  // stdout and stderr together
};
CommandResult run_command(const std::string& cmd);

// A whole file's bytes, and a file written from bytes (tests that corrupt or truncate files).
std::vector<char> file_bytes(const std::filesystem::path& p);
void write_bytes(const std::filesystem::path& p, const std::vector<char>& bytes);

// A run's metrics.jsonl lines as written, minus the fields that measure time (tokens_per_s, mfu):
// what two runs that must be bit-identical are compared on.
std::vector<std::string> deterministic_metrics(const std::filesystem::path& metrics_file);

// `ferry` built beside the tests, and the source tree (fixtures, configs).
std::string ferry_binary();
std::filesystem::path source_dir();

// A fresh empty folder under the system temp folder, removed when the object goes.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace ferry::test

#define FERRY_SKIP_WITHOUT_GPU()                                                   \
  do {                                                                             \
    if (::ferry::cuda_device_count() == 0) GTEST_SKIP() << ::ferry::device_summary(); \
  } while (0)
