// tests/support/gtest_main.cpp — the main of every test executable: GoogleTest's own, except for
// the exit status (tests/support/skip_verdict.h), which tells ctest when a test was skipped.
// Built twice (tests/CMakeLists.txt): FERRY_GPU_TEST_MAIN=1 for the *_gpu_test executables.
#include <gtest/gtest.h>

#include "tests/support/skip_verdict.h"

#ifndef FERRY_GPU_TEST_MAIN
#define FERRY_GPU_TEST_MAIN 0
#endif

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const bool failed = RUN_ALL_TESTS() != 0;
  return ferry::test::skip_aware_exit_status(failed, *::testing::UnitTest::GetInstance(), FERRY_GPU_TEST_MAIN != 0);
}
