// LatencyTracker: the running mean and standard deviation of one variant's execution time,
// as MDInference's server keeps them: the first `warmup` runs are ignored, a run more than
// `cold_sigmas` standard deviations from the mean is treated as cold and dropped, and the
// estimate is an exponentially weighted average (alpha = 0.5 in the authors' code) or, with
// alpha = 0, the plain mean of every accepted run. Not thread-safe: guard it per variant.
#pragma once

#include <cstdint>

namespace edgefleet {

struct LatencyTrackerOptions {
  int warmup = 10;
  double alpha = 0.5;         // weight of the newest run; 0 = cumulative mean/variance
  double cold_sigmas = 10.0;  // runs further than this from the mean are dropped
  int min_runs_for_outliers = 5;
};

class LatencyTracker {
 public:
  explicit LatencyTracker(LatencyTrackerOptions options = {}) : options_(options) {}

  // Records one run. Returns false when it was ignored (warm-up or cold outlier).
  bool add(double ms);

  double mean_ms() const { return mean_; }
  double std_ms() const;
  std::int64_t accepted() const { return accepted_; }
  std::int64_t dropped() const { return dropped_; }

 private:
  LatencyTrackerOptions options_;
  std::int64_t seen_ = 0;
  std::int64_t accepted_ = 0;
  std::int64_t dropped_ = 0;
  double mean_ = 0.0;
  double variance_ = 0.0;  // EWMA variance, or M2 / n for the cumulative mode
  double m2_ = 0.0;
};

}  // namespace edgefleet
