// tests/harness/gpu_skips_reported_test.cpp — on a machine without a GPU, `ctest -L gpu` reports
// every gpu test as skipped, never as passed, so "100% tests passed" cannot hide a GPU test that did
// not run (tests/support/skip_verdict.h, SKIP_RETURN_CODE in tests/CMakeLists.txt and mpi.cmake).
// It runs the real ctest on this build's tests/ folder (whose Testing/ logs are apart from those of
// a ctest run over the whole build, which may be running this test). On a machine with a GPU the gpu
// tests run for real and this check skips.
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "engine/device.h"
#include "tests/support/support.h"

namespace ferry::test {
namespace {

struct CtestLine {
  std::string name, status;
};

// "  3/12 Test  #7: gelu_gpu_test ....................***Skipped   0.01 sec"
std::vector<CtestLine> ctest_results(const std::string& out) {
  std::vector<CtestLine> lines;
  const std::regex re(R"(Test\s+#\d+: (\S+) \.*\s*(?:\*\*\*)?([A-Za-z][A-Za-z ]*?)\s+[0-9.]+ sec)");
  for (std::sregex_iterator it(out.begin(), out.end(), re), end; it != end; ++it)
    lines.push_back({(*it)[1].str(), (*it)[2].str()});
  return lines;
}

TEST(GpuSkipsReported, CtestReportsEveryGpuTestAsSkippedWithoutADevice) {
  if (cuda_device_count() > 0) GTEST_SKIP() << "a device is present: the gpu tests run for real";
  const CommandResult r = run_command(std::string(FERRY_CTEST) + " --test-dir " + FERRY_TESTS_BUILD_DIR + " -L gpu");
  ASSERT_EQ(r.exit_code, 0) << "a gpu test failed without a device:\n" << r.out;
  const auto results = ctest_results(r.out);
  ASSERT_GE(results.size(), 10u) << "expected the gpu tests of tests/kernels, engine, finetune, parallel:\n" << r.out;
  for (const CtestLine& t : results) EXPECT_EQ(t.status, "Skipped") << t.name << " was reported as " << t.status;
}

}  // namespace
}  // namespace ferry::test
