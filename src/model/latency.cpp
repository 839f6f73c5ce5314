#include "edgefleet/latency.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

namespace edgefleet {

Expected<LatencyStats> measure_latency(Classifier& classifier, int batch, int warmup, int runs) {
  if (batch <= 0 || runs <= 0 || warmup < 0) return invalid_argument("measure_latency: batch and runs must be positive");
  const auto& in = classifier.card().input;
  std::vector<float> input(static_cast<std::size_t>(batch) * in.channels() * in.height * in.width, 0.5f);
  for (int i = 0; i < warmup; ++i) {
    auto out = classifier.infer(input.data(), batch);
    if (!out) return out.status();
  }
  std::vector<double> times;
  for (int i = 0; i < runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    auto out = classifier.infer(input.data(), batch);
    if (!out) return out.status();
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  LatencyStats stats;
  stats.batch = batch;
  stats.runs = runs;
  stats.mean_ms = std::accumulate(times.begin(), times.end(), 0.0) / runs;
  double var = 0;
  for (double t : times) var += (t - stats.mean_ms) * (t - stats.mean_ms);
  stats.std_ms = runs > 1 ? std::sqrt(var / (runs - 1)) : 0.0;
  std::sort(times.begin(), times.end());
  stats.median_ms = runs % 2 ? times[runs / 2] : 0.5 * (times[runs / 2 - 1] + times[runs / 2]);
  stats.min_ms = times.front();
  stats.max_ms = times.back();
  return stats;
}

}  // namespace edgefleet
