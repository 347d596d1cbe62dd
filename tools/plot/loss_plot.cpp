// tools/plot/loss_plot.cpp
#include "tools/plot/loss_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "engine/checkpoint/atomic_file.h"
#include "base/error.h"

namespace ferry::plot {

namespace {

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string tick_label(double v) {
  char buf[32];
  if (std::fabs(v) >= 1000 || v == std::floor(v)) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.2g", v);
  }
  return buf;
}

std::string escape(const std::string& s) {
  std::string r;
  for (char c : s) {
    if (c == '<') r += "&lt;";
    else if (c == '>') r += "&gt;";
    else if (c == '&') r += "&amp;";
    else r += c;
  }
  return r;
}

// About five round tick values (1, 2 or 5 × 10^k apart) covering [lo, hi].
std::vector<double> ticks(double lo, double hi) {
  const double span = hi - lo;
  if (!(span > 0)) return {lo};
  const double raw = span / 5;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double step = raw / mag < 1.5 ? mag : raw / mag < 3.5 ? 2 * mag : raw / mag < 7.5 ? 5 * mag : 10 * mag;
  // Counted, not `v += step` until past hi: where step is below half an ulp of lo (steps near 1e17
  // a few apart in a metrics.jsonl) the sum never moves and `ferry plot` hung. At most 8 fit.
  std::vector<double> t;
  const double first = std::ceil(lo / step) * step;
  for (int k = 0; k <= 10; ++k) {
    const double v = first + k * step;
    if (!(v <= hi + 1e-9 * span)) break;
    t.push_back(v);
  }
  return t;
}

}  // namespace

std::string loss_curve_svg(const std::vector<Series>& series, const std::string& title, int width, int height,
                           const std::string& y_label, const std::string& x_label) {
  const double left = 64, right = 20, top = 36, bottom = 48;
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const Series& s : series)
    for (auto [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  if (!std::isfinite(x0)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1;
  const double pad = (y1 - y0) * 0.05;
  y0 -= pad, y1 += pad;
  const double pw = width - left - right, ph = height - top - bottom;
  auto X = [&](double x) { return left + (x - x0) / (x1 - x0) * pw; };
  auto Y = [&](double y) { return top + (1 - (y - y0) / (y1 - y0)) * ph; };

  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) + "\" height=\"" +
                    std::to_string(height) + "\" viewBox=\"0 0 " + std::to_string(width) + " " +
                    std::to_string(height) + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg += "<text x=\"" + num(width / 2.0) + "\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">" + escape(title) +
         "</text>\n";
  for (double v : ticks(x0, x1))
    svg += "<line x1=\"" + num(X(v)) + "\" y1=\"" + num(top) + "\" x2=\"" + num(X(v)) + "\" y2=\"" + num(top + ph) +
           "\" stroke=\"#eee\"/><text x=\"" + num(X(v)) + "\" y=\"" + num(top + ph + 16) +
           "\" text-anchor=\"middle\">" + tick_label(v) + "</text>\n";
  for (double v : ticks(y0, y1))
    svg += "<line x1=\"" + num(left) + "\" y1=\"" + num(Y(v)) + "\" x2=\"" + num(left + pw) + "\" y2=\"" + num(Y(v)) +
           "\" stroke=\"#eee\"/><text x=\"" + num(left - 6) + "\" y=\"" + num(Y(v) + 4) + "\" text-anchor=\"end\">" +
           tick_label(v) + "</text>\n";
  svg += "<rect x=\"" + num(left) + "\" y=\"" + num(top) + "\" width=\"" + num(pw) + "\" height=\"" + num(ph) +
         "\" fill=\"none\" stroke=\"#333\"/>\n";
  svg += "<text x=\"" + num(left + pw / 2) + "\" y=\"" + num(height - 10.0) + "\" text-anchor=\"middle\">" + escape(x_label) + "</text>\n";
  svg += "<text transform=\"translate(16 " + num(top + ph / 2) + ") rotate(-90)\" text-anchor=\"middle\">" + escape(y_label) + "</text>\n";
  int legend = 0;
  for (const Series& s : series) {
    std::string pts;
    size_t n = 0;
    for (auto [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y)) continue;
      pts += num(X(x)) + "," + num(Y(y)) + " ";
      ++n;
    }
    if (n == 0) continue;
    svg += "<polyline fill=\"none\" stroke=\"" + s.color + "\" stroke-width=\"1.5\" points=\"" + pts + "\"/>\n";
    if (n <= 30)
      for (auto [x, y] : s.points)
        if (std::isfinite(x) && std::isfinite(y))
          svg += "<circle cx=\"" + num(X(x)) + "\" cy=\"" + num(Y(y)) + "\" r=\"3\" fill=\"" + s.color + "\"/>\n";
    const double ly = top + 14 + 16 * legend++;
    svg += "<line x1=\"" + num(left + pw - 120) + "\" y1=\"" + num(ly - 4) + "\" x2=\"" + num(left + pw - 100) +
           "\" y2=\"" + num(ly - 4) + "\" stroke=\"" + s.color + "\" stroke-width=\"2\"/><text x=\"" +
           num(left + pw - 94) + "\" y=\"" + num(ly) + "\">" + escape(s.label) + "</text>\n";
  }
  svg += "</svg>\n";
  return svg;
}

Series read_series(const std::filesystem::path& metrics_jsonl, const std::string& key, const std::string& label,
                   const std::string& color, const std::string& x_key) {
  std::ifstream in(metrics_jsonl);
  if (!in) user_error(metrics_jsonl.string(), ": cannot read the metrics to plot");
  Series out{label, color, {}};
  std::string line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains(x_key) || !j[x_key].is_number()) continue;
    if (j.contains(key) && j[key].is_number()) out.points.emplace_back(j[x_key].get<double>(), j[key].get<double>());
  }
  return out;
}

void write_loss_plot(const std::filesystem::path& metrics_jsonl, const std::filesystem::path& svg_path,
                     const std::string& title) {
  write_file_atomically(svg_path, loss_curve_svg({read_series(metrics_jsonl, "train_loss", "train", "#1f77b4"),
                                                  read_series(metrics_jsonl, "val_loss", "validation", "#d62728")},
                                                 title));
}

}  // namespace ferry::plot
