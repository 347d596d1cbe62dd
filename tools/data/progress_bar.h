// tools/data/progress_bar.h — one self-overwriting progress line on stderr, drawn only when stderr is
// a terminal (a log file or a test's captured output gets no carriage-return noise).
#pragma once
#include <chrono>
#include <cstddef>
#include <string>

namespace ferry::data {

class ProgressBar {
 public:
  // `unit` names what `total` counts ("MB" divides bytes by 1e6 for display; anything else is shown raw).
  ProgressBar(std::string label, size_t total, std::string unit);
  ~ProgressBar();
  // Redraws at most ten times a second.
  void update(size_t done);
  // Draws the final state and ends the line.
  void finish();

 private:
  void draw(size_t done);

  std::string label_;
  size_t total_;
  std::string unit_;
  bool enabled_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace ferry::data
