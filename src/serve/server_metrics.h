// Internal: the server's counters and histograms, exposed as Prometheus text at /metrics.
// Thread-safe: every method takes one short lock.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "edgefleet/kserve.h"
#include "edgefleet/selection.h"

namespace edgefleet {

class ServerMetrics {
 public:
  // One answered request: `model` as addressed (a loaded task or variant, or "" for any
  // other name: label values come from the repository, never from request text, so that a
  // client cannot add series), `variant` that ran ("" when it failed before running), the HTTP status, its time in the server and waiting for a
  // model copy, and whether network + server time overran its SLA.
  void request(const std::string& model, const std::string& variant, int status, double seconds, double queue_seconds,
               bool sla_missed);
  // A request the core answered (status 200): the variant, queue time and network time come
  // from the response's parameters; `seconds` is the frontend's time on it.
  void answered(const std::string& model, const InferResponse& response, double seconds);
  void shed(const std::string& variant);
  // Every counter, plus each variant's online latency profile.
  std::string prometheus_text(const std::vector<VariantProfile>& profiles) const;

 private:
  static constexpr std::array<double, 12> kBuckets = {0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5};
  struct Histogram {
    std::array<std::int64_t, kBuckets.size()> counts{};
    std::int64_t count = 0;
    double sum = 0.0;
    void add(double v);
  };
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, std::int64_t> requests_;  // (model, status)
  std::map<std::string, std::int64_t> selections_;                // variant
  std::map<std::string, std::int64_t> sla_misses_;                // model
  std::map<std::string, std::int64_t> shed_;                      // variant
  Histogram duration_;
  Histogram queue_;
};

}  // namespace edgefleet
