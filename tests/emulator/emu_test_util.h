// tests/emulator/emu_test_util.h — what the emulator tests share: the gpu tests' device buffers
// and error measures (tests/kernels/cuda_test_util.h, here on the emulated CUDA runtime), a fixture
// that starts every test from a clean emulator and fails it on any fault, and a fresh seed per run
// (FERRY_TEST_SEED reproduces one; the seed is printed with every failure).
#pragma once
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>

#include "kernels/cuda_check.h"
#include "kernels/emulator/emulator.h"
#include "tests/kernels/cuda_test_util.h"

namespace ferry::test {

inline uint64_t emu_seed() {
  static const uint64_t seed = []() -> uint64_t {
    if (const char* s = std::getenv("FERRY_TEST_SEED")) return std::strtoull(s, nullptr, 10);
    return static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  }();
  return seed;
}

class Emulated : public ::testing::Test {
 protected:
  void SetUp() override { ferry::emu::reset(); }
  void TearDown() override {
    const auto& f = ferry::emu::last_fault();
    EXPECT_EQ(f.kind, ferry::emu::FaultKind::None) << f.message << " (FERRY_TEST_SEED=" << emu_seed() << ")";
    ferry::emu::reset();
  }
  // Runs `call` (a wrapper call that should fail on the device) and returns the fault it caused,
  // clearing it so that the test can go on.
  static ferry::emu::Fault fault_of(const std::function<void()>& call) {
    try {
      call();
      cudaDeviceSynchronize();
    } catch (const ferry::kernels::cuda::CudaError&) {
    }
    ferry::emu::Fault f = ferry::emu::last_fault();
    ferry::emu::reset();
    return f;
  }
};

template <typename Param>
class EmulatedP : public Emulated, public ::testing::WithParamInterface<Param> {};

}  // namespace ferry::test
