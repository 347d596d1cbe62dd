// tests/support/skip_verdict.h — the exit status a test executable hands ctest, so that a test
// that did not run is never counted as "Passed" (tests/CMakeLists.txt sets SKIP_RETURN_CODE).
//
//   1   a test failed
//   77  nothing failed, but the run proved less than "passed" would say: a gpu executable in which
//       any test skipped (no device, or a device or library that cannot run it), or any executable
//       in which every test skipped
//   0   otherwise (a cpu executable may skip some tests for a missing asset and still pass)
// Header-only: tests/support/gtest_main.cpp and the MPI main (tests/parallel/mpi_main.cpp) share it.
#pragma once
#include <gtest/gtest.h>

namespace ferry::test {

inline constexpr int kSkipExitCode = 77;

inline int skip_aware_exit_status(bool failed, const ::testing::UnitTest& run, bool gpu_executable) {
  if (failed) return 1;
  const int skipped = run.skipped_test_count();
  if (skipped > 0 && (gpu_executable || run.successful_test_count() == 0)) return kSkipExitCode;
  return 0;
}

}  // namespace ferry::test
