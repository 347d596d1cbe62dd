// tools/data/progress_bar.cpp
#include "tools/data/progress_bar.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace ferry::data {

ProgressBar::ProgressBar(std::string label, size_t total, std::string unit)
    : label_(std::move(label)),
      total_(total),
      unit_(std::move(unit)),
      enabled_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_ - std::chrono::seconds(1)) {}

ProgressBar::~ProgressBar() {
  // A bar abandoned by an exception still ends its line, so the error message starts on a fresh one.
  if (enabled_ && !finished_) std::fputc('\n', stderr);
}

void ProgressBar::update(size_t done) {
  const auto now = std::chrono::steady_clock::now();
  if (!enabled_ || now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  draw(done);
}

void ProgressBar::finish() {
  if (!enabled_ || finished_) return;
  draw(total_);
  std::fputc('\n', stderr);
  finished_ = true;
}

void ProgressBar::draw(size_t done) {
  constexpr int kWidth = 30;
  const double fraction = total_ ? std::min(1.0, static_cast<double>(done) / static_cast<double>(total_)) : 1.0;
  const int filled = static_cast<int>(fraction * kWidth);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double scale = unit_ == "MB" ? 1e-6 : 1.0;
  const double rate = seconds > 0 ? static_cast<double>(done) * scale / seconds : 0.0;
  std::fprintf(stderr, "\r%s [%.*s%*s] %3d%%  %.1f/%.1f %s  %.1f %s/s  ", label_.c_str(), filled,
               "##############################", kWidth - filled, "", static_cast<int>(fraction * 100),
               static_cast<double>(done) * scale, static_cast<double>(total_) * scale, unit_.c_str(), rate,
               unit_.c_str());
  std::fflush(stderr);
}

}  // namespace ferry::data
