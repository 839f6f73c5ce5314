#include "cli/cli_common.h"

#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <sstream>

namespace edgefleet::cli {

int fail(const Status& status) {
  std::cerr << "edgefleet: " << status.to_string() << "\n";
  return kExitFailure;
}

int fail_retryable_or_not(const Status& status) {
  fail(status);
  const bool retryable = status.code() == StatusCode::kIoError || status.code() == StatusCode::kUnavailable;
  return retryable ? kExitRetryable : kExitFailure;
}

namespace {
sigset_t stop_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  return signals;
}
}  // namespace

void block_stop_signals() {
  const sigset_t signals = stop_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

void wait_for_stop_signal() {
  const sigset_t signals = stop_signals();
  int signal = 0;
  sigwait(&signals, &signal);
}

std::string fixed(double value, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*f", decimals, value);
  return buffer;
}

std::string human_count(double value) {
  if (value >= 1e9) return fixed(value / 1e9, 2) + "G";
  if (value >= 1e6) return fixed(value / 1e6, 2) + "M";
  if (value >= 1e3) return fixed(value / 1e3, 1) + "k";
  return fixed(value, 0);
}

std::string format_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width(header.size());
  for (std::size_t c = 0; c < header.size(); ++c) width[c] = header[c].size();
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < row.size() && c < width.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::ostringstream out;
    for (std::size_t c = 0; c < width.size(); ++c) {
      const std::string cell = c < cells.size() ? cells[c] : "";
      const std::string pad(width[c] - cell.size(), ' ');
      out << (c ? "  " : "") << (c == 0 ? cell + pad : pad + cell);
    }
    return out.str() + "\n";
  };
  std::string out = line(header);
  std::size_t total = 0;
  for (auto w : width) total += w + 2;
  out += std::string(total - 2, '-') + "\n";
  for (const auto& row : rows) out += line(row);
  return out;
}

std::string format_markdown_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  auto line = [](const std::vector<std::string>& cells) {
    std::string out = "|";
    for (const auto& cell : cells) out += " " + cell + " |";
    return out + "\n";
  };
  std::string out = line(header) + "|";
  for (std::size_t i = 0; i < header.size(); ++i) out += i == 0 || i + 1 == header.size() ? "---|" : "---:|";
  out += "\n";
  for (const auto& row : rows) out += line(row);
  return out;
}

}  // namespace edgefleet::cli
