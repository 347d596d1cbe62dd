// tests/engine/determinism_test.cpp — two runs of `ferry pretrain` with one seed write identical
// metrics, bit for bit (every field but the wall-clock ones: throughput, MFU); another seed does not.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "tests/support/support.h"

namespace ferry {
namespace {

std::string metrics_without_timing(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::string line, out;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    // Wall-clock figures are the only fields allowed to differ.
    for (const char* timing : {"tokens_per_s", "mfu", "elapsed_s", "eta_s"}) j.erase(timing);
    out += j.dump() + "\n";
  }
  return out;
}

std::string run(const test::TempDir& dir, const std::string& name, int seed, int threads) {
  const auto out = dir.path() / name;
  const std::string cmd = "OMP_NUM_THREADS=" + std::to_string(threads) + " " + test::ferry_binary() +
                          " pretrain --config " + (test::source_dir() / "configs/tiny.toml").string() +
                          " --max-steps 12 --batch-size 4 --seq-len 32 --eval-every 6 --seed " + std::to_string(seed) +
                          " --out " + out.string();
  const auto r = test::run_command(cmd);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  return metrics_without_timing(out / "metrics.jsonl");
}

TEST(Determinism, SameSeedGivesBitwiseIdenticalMetrics) {
  test::TempDir dir;
  const std::string a = run(dir, "a", 7, 1);
  const std::string b = run(dir, "b", 7, 2);  // the thread count must not change a bit either
  const std::string c = run(dir, "c", 8, 1);
  ASSERT_FALSE(a.empty());
  EXPECT_NE(a.find("\"val_loss\""), std::string::npos);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

}  // namespace
}  // namespace ferry
