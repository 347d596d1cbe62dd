// tools/cli/plot.cpp — `ferry plot`: curves from metrics.jsonl files (ferry pretrain's or ferry
// finetune's) drawn on shared axes as one SVG, e.g. the transfer default's dev accuracy of the
// pretrained and the from-scratch run side by side:
//   ferry plot --out cmp.svg --key dev --y-label "dev accuracy" pretrained=runs/a/metrics.jsonl scratch=runs/b/metrics.jsonl
// or any JSON-lines table against another field than step (--x-key), e.g. a sweep's result per budget.
#include <filesystem>
#include <memory>

#include "engine/checkpoint/atomic_file.h"
#include "base/error.h"
#include "tools/cli/command.h"
#include "tools/plot/loss_plot.h"

namespace {

struct Args {
  std::string out, key = "train_loss", x_key = "step", title, y_label, x_label;
  std::vector<std::string> series;
};

void run(const Args& a) {
  static const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};
  if (a.series.empty()) ferry::user_error("give at least one LABEL=metrics.jsonl to plot");
  std::vector<ferry::plot::Series> series;
  for (const std::string& s : a.series) {
    const auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == s.size())
      ferry::user_error("series '", s, "': expected LABEL=PATH/metrics.jsonl");
    series.push_back(ferry::plot::read_series(s.substr(eq + 1), a.key, s.substr(0, eq),
                                              kColors[series.size() % (sizeof kColors / sizeof *kColors)], a.x_key));
    if (series.back().points.empty())
      ferry::user_error(s.substr(eq + 1), ": no line with both '", a.x_key, "' and '", a.key, "' to plot");
  }
  ferry::write_file_atomically(a.out, ferry::plot::loss_curve_svg(series, a.title.empty() ? a.key : a.title, 720, 420,
                                                                  a.y_label.empty() ? a.key : a.y_label,
                                                                  a.x_label.empty() ? a.x_key : a.x_label));
  std::fprintf(stderr, "ferry: %zu curves in %s\n", series.size(), a.out.c_str());
}

void setup(CLI::App& app) {
  auto a = std::make_shared<Args>();
  app.add_option("series", a->series, "LABEL=PATH/metrics.jsonl, one per curve")->required();
  app.add_option("--out", a->out, "the SVG file to write")->required();
  app.add_option("--key", a->key, "the metrics field to draw against step (train_loss, val_loss, dev, ...)");
  app.add_option("--x-key", a->x_key, "the metrics field on the horizontal axis (default step; e.g. tokens for a sweep)");
  app.add_option("--x-label", a->x_label, "horizontal axis label (default: the x key)");
  app.add_option("--title", a->title, "title above the plot (default: the key)");
  app.add_option("--y-label", a->y_label, "vertical axis label (default: the key)");
  app.callback([a] { run(*a); });
}

}  // namespace

FERRY_COMMAND(plot, "plot", "Draw curves from metrics.jsonl files (pretrain or finetune runs) into one SVG", setup);
