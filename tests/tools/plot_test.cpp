// tests/tools/plot_test.cpp — `ferry plot` against another field than step: a sweep's JSON lines
// (one line per budget) drawn as points on labelled axes, and the errors a wrong key gives.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "tests/support/support.h"
#include "tools/plot/loss_plot.h"

namespace ferry {
namespace {

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

TEST(Plot, ReadsPointsAgainstTheChosenField) {
  test::TempDir dir;
  const auto file = dir.path() / "sweep.jsonl";
  std::ofstream(file) << "{\"tokens\": 3.1, \"gap\": 0.6, \"step\": 1}\n"
                         "{\"tokens\": 12.3, \"gap\": -0.1}\n"
                         "not json\n"
                         "{\"gap\": 9.0}\n"
                         "{\"tokens\": 49.2, \"gap\": 2.5, \"step\": 3}\n";
  const plot::Series by_tokens = plot::read_series(file, "gap", "gap", "#000", "tokens");
  ASSERT_EQ(by_tokens.points.size(), 3u);
  EXPECT_DOUBLE_EQ(by_tokens.points[1].first, 12.3);
  EXPECT_DOUBLE_EQ(by_tokens.points[1].second, -0.1);
  EXPECT_DOUBLE_EQ(by_tokens.points[2].first, 49.2);
  const plot::Series by_step = plot::read_series(file, "gap", "gap", "#000");
  ASSERT_EQ(by_step.points.size(), 2u);  // only the lines that have a step
  EXPECT_DOUBLE_EQ(by_step.points[1].first, 3.0);
}

TEST(Plot, CommandDrawsASweepWithMarkersAndTheAxisLabels) {
  test::TempDir dir;
  const auto file = dir.path() / "sweep.jsonl";
  std::ofstream(file) << "{\"tokens\": 3.1, \"gap\": 0.6}\n{\"tokens\": 12.3, \"gap\": -0.1}\n{\"tokens\": 49.2, \"gap\": 2.5}\n";
  const auto svg = dir.path() / "sweep.svg";
  auto r = test::run_command(test::ferry_binary() + " plot --x-key tokens --x-label 'pretraining tokens (M)' --key gap " +
                             "--y-label 'points over scratch' --out " + svg.string() + " 'gap=" + file.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const std::string text = slurp(svg);
  EXPECT_NE(text.find(">pretraining tokens (M)</text>"), std::string::npos);
  EXPECT_NE(text.find(">points over scratch</text>"), std::string::npos);
  EXPECT_EQ(count(text, "<polyline"), 1u);
  EXPECT_EQ(count(text, "<circle"), 3u);

  // A field no line has: one line naming both keys, exit 2, no file written.
  r = test::run_command(test::ferry_binary() + " plot --x-key budget --key gap --out " + (dir.path() / "x.svg").string() +
                        " 'gap=" + file.string() + "'");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("'budget'"), std::string::npos) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "x.svg"));
}

// A training curve (more than 30 points) stays a plain line, and its x axis still says step.
TEST(Plot, LongCurvesHaveNoMarkers) {
  plot::Series s{"train", "#000", {}};
  for (int i = 0; i < 31; ++i) s.points.emplace_back(i, 1.0 / (i + 1));
  const std::string text = plot::loss_curve_svg({s}, "t");
  EXPECT_EQ(count(text, "<circle"), 0u);
  EXPECT_NE(text.find(">step</text>"), std::string::npos);
}

}  // namespace
}  // namespace ferry
