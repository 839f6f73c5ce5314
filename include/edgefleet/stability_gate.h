// A release gate on instability: compares a run's summary.json with a baseline's and fails
// when instability rose by more than a margin beyond what sampling noise explains.
//
// Each figure is a share of inputs (the run's instability, and each source's when the run
// varies named axes). Its rise is judged by a one-sided confidence bound on the difference
// of two proportions: the gate fails a figure when
//   (p_new - p_old) - z * sqrt(p_old(1-p_old)/n_old + p_new(1-p_new)/n_new) > max_increase,
// z the normal quantile of `confidence`. The bound treats the two runs as independent
// samples; for runs over the same inputs it is conservative (a paired test would be tighter).
//
//   auto result = check_release(baseline_json, current_json, {}).value();
//   if (!result.passed) ...   // result.figures says which figure rose, by how much
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "edgefleet/status.h"

namespace edgefleet {

struct GateOptions {
  double max_increase = 0.0;  // a rise (share of inputs) tolerated beyond the noise
  double confidence = 0.95;   // of the one-sided bound
};

struct GateFigure {
  std::string name;  // "instability", or "instability of SOURCE"
  double baseline = 0.0;
  double current = 0.0;
  std::size_t baseline_inputs = 0;
  std::size_t current_inputs = 0;
  double increase = 0.0;     // current - baseline
  double lower_bound = 0.0;  // of the increase, at the confidence
  bool failed = false;       // lower_bound > max_increase
};

struct GateResult {
  std::vector<GateFigure> figures;  // the run's, then each source present in both summaries
  std::vector<std::string> only_in_one;  // sources that one summary has and the other not (not judged)
  bool passed = true;
};

// Fails with invalid_argument when a summary lacks the figures (names the key) or the
// options are out of range.
Expected<GateResult> check_release(const nlohmann::json& baseline, const nlohmann::json& current, const GateOptions& options);

nlohmann::json gate_result_to_json(const GateResult& result, const GateOptions& options);

}  // namespace edgefleet
