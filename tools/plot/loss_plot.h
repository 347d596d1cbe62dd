// tools/plot/loss_plot.h — the loss curve of a run as a hand-written SVG (no plotting dependency):
// train loss per step and validation loss at its evaluation steps, on shared axes.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace ferry::plot {

struct Series {
  std::string label;
  std::string color;  // any SVG colour
  std::vector<std::pair<double, double>> points;  // (step, loss)
};

// A complete SVG document (width × height pixels) with axes, ticks, a legend and one polyline per
// non-empty series. Non-finite points are skipped.
// A series of at most 30 points also gets a marker at each point (a sweep, not a training curve).
std::string loss_curve_svg(const std::vector<Series>& series, const std::string& title, int width = 720,
                           int height = 420, const std::string& y_label = "loss (nats/token)",
                           const std::string& x_label = "step");

// The (x_key, key) points of a metrics.jsonl (lines without both are skipped; a line that is not a
// JSON object is skipped too). Throws UserError naming the file when it cannot be read.
Series read_series(const std::filesystem::path& metrics_jsonl, const std::string& key, const std::string& label,
                   const std::string& color, const std::string& x_key = "step");

// Reads metrics.jsonl (train_loss, val_loss by step) and writes the SVG atomically to svg_path.
// Throws UserError naming the file when it cannot be read or written.
void write_loss_plot(const std::filesystem::path& metrics_jsonl, const std::filesystem::path& svg_path,
                     const std::string& title);

}  // namespace ferry::plot
