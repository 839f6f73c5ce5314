#include "edgefleet/plot.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace edgefleet {
namespace fs = std::filesystem;

namespace {

// gnuplot strings are single-quoted; a quote inside is doubled.
std::string quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::string shell_quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

bool gnuplot_installed() { return std::system("command -v gnuplot >/dev/null 2>&1") == 0; }

}  // namespace

Status write_line_plot_svg(const LinePlot& plot, const std::string& svg_path) {
  if (!gnuplot_installed()) return unsupported("gnuplot is not installed (Debian package gnuplot-nox); no plot written");
  if (plot.series.empty()) return invalid_argument("plot '" + plot.title + "' has no series");
  const std::string data_path = svg_path + ".dat";
  const std::string script_path = svg_path + ".gp";
  {
    std::ofstream data(data_path);
    for (const auto& [name, points] : plot.series) {
      data << "# " << name << "\n";
      for (const auto& [x, y] : points) data << x << " " << y << "\n";
      data << "\n\n";  // a gnuplot data block per series
    }
    std::ofstream script(script_path);
    script << "set terminal svg size 800,480 dynamic font 'sans,12'\n"
           << "set output " << quoted(svg_path) << "\n"
           << "set title " << quoted(plot.title) << "\n"
           << "set xlabel " << quoted(plot.x_label) << "\n"
           << "set ylabel " << quoted(plot.y_label) << "\n"
           << "set key outside right\nset grid\n"
           << "plot ";
    int index = 0;
    for (const auto& [name, points] : plot.series) {
      script << (index ? ", " : "") << quoted(data_path) << " index " << index << " with linespoints title " << quoted(name);
      ++index;
    }
    script << "\n";
    if (!data || !script) return io_error("cannot write the plot files beside '" + svg_path + "'");
  }
  const std::string command = "gnuplot " + shell_quoted(script_path) + " 2>/dev/null";
  const int rc = std::system(command.c_str());
  std::error_code ec;
  fs::remove(data_path, ec);
  fs::remove(script_path, ec);
  if (rc != 0 || !fs::exists(svg_path)) return io_error("gnuplot failed to draw '" + svg_path + "'");
  return Status::ok();
}

}  // namespace edgefleet
