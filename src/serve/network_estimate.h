// Internal: the client's running estimate of its network time and the rule "duplicate only
// when it pays", shared by the simulator and the real client (edgefleet/inference_client.h)
// so both decide alike.
#pragma once

#include <algorithm>
#include <cmath>

namespace edgefleet {

// Exponentially weighted mean and variance of the network times measured, the newest
// weighted `alpha` (West's incremental form).
class NetworkEstimate {
 public:
  explicit NetworkEstimate(double alpha) : alpha_(alpha) {}

  void add(double ms) {
    if (!measured_) {
      mean_ = ms;
      measured_ = true;
      return;
    }
    const double d = ms - mean_;
    mean_ += alpha_ * d;
    var_ = (1 - alpha_) * (var_ + alpha_ * d * d);
  }
  bool measured() const { return measured_; }
  double mean_ms() const { return mean_; }

  // P(T_nw > sla - server_ms), T_nw normal with the running mean and spread: the chance that
  // even a remote answer taking server_ms misses the deadline.
  double miss_probability(double sla_ms, double server_ms) const {
    const double headroom = sla_ms - server_ms - mean_;
    const double spread = std::sqrt(std::max(var_, 1e-12));
    return 0.5 * std::erfc(headroom / (spread * std::sqrt(2.0)));
  }

 private:
  double alpha_;
  double mean_ = 0.0;
  double var_ = 0.0;
  bool measured_ = false;
};

// Whether to run the on-device model beside the remote call: always when `threshold` is 0
// (the paper) or before anything was measured; otherwise only when a remote miss is likelier
// than `threshold`.
inline bool should_duplicate(const NetworkEstimate& estimate, double sla_ms, double server_ms, double threshold) {
  if (threshold <= 0 || !estimate.measured()) return true;
  return estimate.miss_probability(sla_ms, server_ms) > threshold;
}

}  // namespace edgefleet
