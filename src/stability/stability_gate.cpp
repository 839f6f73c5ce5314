#include "edgefleet/stability_gate.h"

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

namespace edgefleet {
namespace {

// The standard normal quantile, by bisection on erfc (monotone; 60 halvings reach double
// precision on the bracket).
double normal_quantile(double p) {
  double lo = -10.0, hi = 10.0;
  for (int i = 0; i < 60; ++i) {
    const double mid = 0.5 * (lo + hi);
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

struct Share {
  double value = 0.0;
  std::size_t inputs = 0;
};

Share share_of(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object() || !j.contains("instability") || !j["instability"].is_number() || !j.contains("images") ||
      !j["images"].is_number_unsigned()) {
    throw Error(invalid_argument(where + ": needs numbers 'instability' and 'images' (a summary.json of a stability run)"));
  }
  const Share s{j["instability"].get<double>(), j["images"].get<std::size_t>()};
  if (!(s.value >= 0 && s.value <= 1)) throw Error(invalid_argument(where + ": 'instability' must be a share in [0, 1]"));
  if (s.inputs == 0) throw Error(invalid_argument(where + ": no inputs"));
  return s;
}

std::map<std::string, Share> sources_of(const nlohmann::json& summary, const std::string& which) {
  std::map<std::string, Share> out;
  if (!summary.contains("per_source")) return out;
  if (!summary["per_source"].is_array()) throw Error(invalid_argument(which + ": 'per_source' must be an array"));
  for (const auto& s : summary["per_source"]) {
    if (!s.is_object() || !s.contains("source") || !s["source"].is_string()) {
      throw Error(invalid_argument(which + ": each per_source entry needs a string 'source'"));
    }
    const std::string name = s["source"].get<std::string>();
    out[name] = share_of(s, which + " per_source '" + name + "'");
  }
  return out;
}

GateFigure judge(std::string name, const Share& old_share, const Share& new_share, double z, double max_increase) {
  GateFigure f;
  f.name = std::move(name);
  f.baseline = old_share.value;
  f.current = new_share.value;
  f.baseline_inputs = old_share.inputs;
  f.current_inputs = new_share.inputs;
  f.increase = f.current - f.baseline;
  const double variance = f.baseline * (1 - f.baseline) / static_cast<double>(f.baseline_inputs) +
                          f.current * (1 - f.current) / static_cast<double>(f.current_inputs);
  f.lower_bound = f.increase - z * std::sqrt(variance);
  f.failed = f.lower_bound > max_increase;
  return f;
}

}  // namespace

Expected<GateResult> check_release(const nlohmann::json& baseline, const nlohmann::json& current, const GateOptions& options) {
  if (!(options.max_increase >= 0 && options.max_increase < 1)) return invalid_argument("the tolerated increase must be in [0, 1)");
  if (!(options.confidence >= 0.5 && options.confidence < 1)) return invalid_argument("the confidence must be in [0.5, 1)");
  return capture([&] {
    const double z = normal_quantile(options.confidence);
    GateResult result;
    result.figures.push_back(judge("instability", share_of(baseline, "the baseline"), share_of(current, "the new run"), z,
                                   options.max_increase));
    const auto old_sources = sources_of(baseline, "the baseline");
    const auto new_sources = sources_of(current, "the new run");
    for (const auto& [source, old_share] : old_sources) {
      auto it = new_sources.find(source);
      if (it == new_sources.end()) {
        result.only_in_one.push_back(source);
        continue;
      }
      result.figures.push_back(judge("instability of " + source, old_share, it->second, z, options.max_increase));
    }
    for (const auto& [source, share] : new_sources) {
      if (!old_sources.count(source)) result.only_in_one.push_back(source);
    }
    for (const auto& f : result.figures) result.passed = result.passed && !f.failed;
    return result;
  });
}

nlohmann::json gate_result_to_json(const GateResult& result, const GateOptions& options) {
  nlohmann::json figures = nlohmann::json::array();
  for (const auto& f : result.figures) {
    figures.push_back({{"name", f.name},
                       {"baseline", f.baseline},
                       {"current", f.current},
                       {"baseline_inputs", f.baseline_inputs},
                       {"current_inputs", f.current_inputs},
                       {"increase", f.increase},
                       {"lower_bound", f.lower_bound},
                       {"failed", f.failed}});
  }
  return {{"passed", result.passed},
          {"max_increase", options.max_increase},
          {"confidence", options.confidence},
          {"figures", figures},
          {"not_compared", result.only_in_one}};
}

}  // namespace edgefleet
