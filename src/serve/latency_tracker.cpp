#include "edgefleet/latency_tracker.h"

#include <cmath>

namespace edgefleet {

bool LatencyTracker::add(double ms) {
  ++seen_;
  if (seen_ <= options_.warmup) return false;
  if (accepted_ >= options_.min_runs_for_outliers) {
    const double sigma = std_ms();
    if (sigma > 0.0 && std::abs(ms - mean_) > options_.cold_sigmas * sigma) {
      ++dropped_;
      return false;
    }
  }
  ++accepted_;
  if (accepted_ == 1) {
    mean_ = ms;
    variance_ = 0.0;
    m2_ = 0.0;
    return true;
  }
  if (options_.alpha > 0.0) {
    // Exponentially weighted mean and variance (West's incremental form).
    const double diff = ms - mean_;
    const double increment = options_.alpha * diff;
    mean_ += increment;
    variance_ = (1.0 - options_.alpha) * (variance_ + diff * increment);
  } else {
    // Welford's cumulative mean and variance.
    const double diff = ms - mean_;
    mean_ += diff / static_cast<double>(accepted_);
    m2_ += diff * (ms - mean_);
    variance_ = m2_ / static_cast<double>(accepted_ - 1);
  }
  return true;
}

double LatencyTracker::std_ms() const { return std::sqrt(std::max(0.0, variance_)); }

}  // namespace edgefleet
