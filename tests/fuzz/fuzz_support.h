// tests/fuzz/fuzz_support.h — what every fuzz target shares: a scratch folder for the files a reader
// opens by path, byte helpers, and FUZZ_ASSERT for the properties a target checks beyond "no crash".
//
// The contract every target enforces: a reader given arbitrary bytes either returns something that
// passes the target's checks or throws ferry::UserError (one line, exit 2 in the CLI). Any other
// exception escapes LLVMFuzzerTestOneInput, std::terminate aborts, and libFuzzer saves the input as a
// crasher — as it does for a sanitizer report, a failed FUZZ_ASSERT, a timeout or a memory blow-up.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::fuzz {

// A folder of this process's own (in /dev/shm when there is one: the writers fsync, and tmpfs makes
// that free), removed at exit.
const std::filesystem::path& scratch_dir();

// Writes `bytes` to scratch_dir()/name and returns the path.
std::filesystem::path write_scratch(const std::string& name, std::string_view bytes);
std::string read_file_bytes(const std::filesystem::path& path);

inline std::string_view as_chars(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Bitwise equality of float arrays (NaN payloads included): a round trip must not change one bit.
inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

[[noreturn]] void fail(const char* file, int line, const std::string& what);

}  // namespace ferry::fuzz

#define FUZZ_ASSERT(cond, what)                                                  \
  do {                                                                           \
    if (!(cond)) ::ferry::fuzz::fail(__FILE__, __LINE__, std::string(#cond ": ") + (what)); \
  } while (0)
