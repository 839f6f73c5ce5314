// Line plots as SVG files, drawn by gnuplot (Debian package gnuplot-nox), for run folders
// and reports. Thread-safe: every call writes its own temporary files.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "edgefleet/status.h"

namespace edgefleet {

struct LinePlot {
  std::string title;
  std::string x_label;
  std::string y_label;
  // series name -> (x, y) points, drawn in name order.
  std::map<std::string, std::vector<std::pair<double, double>>> series;
};

// Writes `svg_path`. Fails with unsupported when gnuplot is not installed, io_error when it
// cannot write or gnuplot fails.
Status write_line_plot_svg(const LinePlot& plot, const std::string& svg_path);

}  // namespace edgefleet
