// tests/fuzz/metrics_fuzz.cpp — metrics.jsonl as `ferry plot` reads it (tools/plot): one JSON object per
// line with a step and losses; lines it cannot use are skipped.
// Properties: reading never fails but for an unreadable file; every point read is the step and value
// of a line that has both as numbers; the SVG is one complete document with one polyline per series
// that has a finite point; writing the plot succeeds.
#include <cmath>

#include "base/error.h"
#include "tests/fuzz/fuzz_support.h"
#include "tools/plot/loss_plot.h"

namespace {

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry;
  using namespace ferry::plot;
  const auto path = fuzz::write_scratch("metrics.jsonl", fuzz::as_chars(data, size));
  const Series train = read_series(path, "train_loss", "train", "#1f77b4");
  const Series val = read_series(path, "val_loss", "validation", "#d62728");
  size_t drawn = 0;
  for (const Series* s : {&train, &val}) {
    bool finite = false;
    for (auto [x, y] : s->points) finite = finite || (std::isfinite(x) && std::isfinite(y));
    drawn += finite;
  }
  const std::string svg = loss_curve_svg({train, val}, "fuzz <&> title");
  FUZZ_ASSERT(svg.rfind("<svg ", 0) == 0 && svg.size() >= 7 && svg.compare(svg.size() - 7, 7, "</svg>\n") == 0,
              "not one complete SVG document");
  FUZZ_ASSERT(count(svg, "<polyline") == drawn, "one polyline per series with a finite point");
  write_loss_plot(path, fuzz::scratch_dir() / "loss.svg", "fuzz");
  return 0;
}
