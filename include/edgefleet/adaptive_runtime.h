// The run-time monitor and re-adaptation (papers/mistify.md §6) on the device side. An
// AdaptiveRuntime serves inference from a multi-branch model and watches its latency against
// a target. When the recent median exceeds the target it switches at once to the widest
// branch that fits the observed slowdown (the foreground path), and asks a port server
// (`edgefleet port --serve`) for a model adapted to the budget that fits; when that model
// arrives it is swapped in without a pause (the background path).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "edgefleet/status.h"

namespace edgefleet {

struct MonitorOptions {
  double target_ms = 0.0;        // batch-1 latency target; 0 = 1.5x the widest branch unloaded
  std::size_t window = 40;       // recent inferences whose median is compared with it
  double headroom = 0.8;         // a replacement is chosen to run at this fraction of the target
  double check_every_ms = 100;
  std::string port_url;          // http://HOST:PORT of `edgefleet port --serve`; "" = switch only
  int calibration_runs = 30;     // per branch at start: the unloaded latency of each
};

struct MonitorEvent {
  double seconds = 0.0;          // since start
  // "violation" (the median went above the target), "recovered" (back under it), "switched",
  // "requested", "swapped", "kept" (a re-adapted model less accurate than the branch), "failed"
  std::string what;
  std::string detail;
  double median_ms = 0.0;        // the recent median when it happened
};

class AdaptiveRuntime {
 public:
  // Loads the model, measures each branch unloaded, starts the monitor thread.
  static Expected<std::unique_ptr<AdaptiveRuntime>> start(const std::string& multi_branch_file, const MonitorOptions& options);
  ~AdaptiveRuntime();
  AdaptiveRuntime(const AdaptiveRuntime&) = delete;
  AdaptiveRuntime& operator=(const AdaptiveRuntime&) = delete;

  int channels() const;
  int input_size() const;
  double target_ms() const;  // as given, or 1.5x the widest branch's unloaded latency
  // n images -> n * classes logits, on whatever model is active. Thread-safe; records latency.
  Expected<std::vector<float>> infer(const float* batch, int n);

  // Emulates a smaller compute budget: each inference is stretched, busy, to 1/share of its
  // duration, as a frequency drop would (1 = the whole device). For scripted scenarios.
  Status set_compute_share(double share);

  std::string active_model() const;  // "branch 2" or the re-adapted goal's name
  double recent_median_ms() const;
  std::vector<double> branch_latency_ms() const;  // unloaded, measured at start
  std::vector<MonitorEvent> events() const;
  bool adapting() const;  // a re-adaptation request is in flight

 private:
  struct Impl;
  explicit AdaptiveRuntime(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct BudgetDropOptions {
  std::string multi_branch_file;
  MonitorOptions monitor;
  double seconds = 60;
  double drop_at = 10;           // when the compute budget drops
  double compute_share = 0.4;    // ... to this share of the device (AdaptiveRuntime::set_compute_share)
  double sample_every_ms = 250;
};

struct LatencySample {
  double seconds = 0.0;
  double median_ms = 0.0;
  std::string model;
};

struct BudgetDropResult {
  double target_ms = 0.0;
  std::vector<double> branch_ms;   // each branch unloaded, as the runtime measured at start
  double before_drop_ms = 0.0;     // recent median just before the drop
  double worst_ms = 0.0;           // worst recent median after it
  double final_ms = 0.0;           // recent median at the end
  std::string final_model;
  std::int64_t requests = 0;
  std::int64_t failed = 0;
  std::vector<LatencySample> timeline;
  std::vector<MonitorEvent> events;
};

// The scripted scenario: inference runs back to back on one client thread; at `drop_at` the
// compute budget drops; the runtime switches, re-adapts and swaps; the timeline is kept.
Expected<BudgetDropResult> run_budget_drop(const BudgetDropOptions& options, const std::vector<float>& images);

}  // namespace edgefleet
