// The MDInference simulator (papers/mdinference.md §V): requests with a network time drawn
// from a network model, a variant chosen per request by each policy, an execution time drawn
// from that variant's latency profile, and optionally an on-device model raced against the
// remote answer. Deterministic for a seed; simulate() is thread-safe (no shared state).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "edgefleet/selection.h"

namespace edgefleet {

// Where a request's network time T_nw (upload + download) comes from.
class NetworkModel {
 public:
  virtual ~NetworkModel() = default;
  virtual std::string describe() const = 0;
  virtual double sample_ms(Rng& rng) const = 0;  // never negative
};

// What one drawn (or traced) time is: the whole round trip T_nw, or the one-way transfer of the
// input T_input, from which the paper estimates T_nw = 2 x T_input (§IV-D).
enum class NetworkSample { kRoundTrip, kInput };
const char* network_sample_name(NetworkSample sample);  // "round-trip" | "input"
std::vector<std::string> network_sample_names();

// "normal:MEAN_MS:STD_MS", "cv:MEAN_MS:CV" (std = CV x mean) or "trace:FILE" (one time in ms
// per line, sampled uniformly). sample_ms() returns the round trip T_nw: the drawn time as it
// is, or twice it when `sample` is kInput. Fails with invalid_argument naming the bad part.
Expected<std::unique_ptr<NetworkModel>> parse_network_model(const std::string& spec,
                                                            NetworkSample sample = NetworkSample::kRoundTrip);

// A zoo as selection sees it: the remote variants and, optionally, the on-device model.
struct ZooProfile {
  std::string name;
  std::vector<VariantProfile> variants;
  std::optional<VariantProfile> on_device;
};

// Reads a zoo profile file ({"name", "variants": [{name, accuracy, mean_ms, std_ms}],
// "on_device": {...}}), or a built-in one by name (paper-table3, paper-table3-fictional).
Expected<ZooProfile> read_zoo_profile(const std::string& name_or_path);
nlohmann::json zoo_profile_to_json(const ZooProfile& zoo);

struct SimulationConfig {
  std::vector<std::string> policies;  // empty = all
  std::vector<double> slas_ms;
  int requests = 10000;
  std::uint64_t seed = 1;
  bool duplicate = true;  // race the on-device model (needs zoo.on_device)
  // > 0: duplicate only when it pays (beyond the paper): the client races its local model
  // only when, from its running estimate of T_nw (mean and spread of the network times it
  // measured, newest weighted `estimate_alpha`), the probability that even the fastest remote
  // variant misses the SLA is above this. Otherwise it sends the remote request alone and
  // takes its answer, late or not. 0 = race on every request (the paper).
  double duplicate_above_miss_probability = 0.0;
  double estimate_alpha = 0.3;
};

struct SimulationRow {
  std::string policy;
  double sla_ms = 0.0;
  int requests = 0;
  double aggregate_accuracy = 0.0;  // mean accuracy of the answers used
  double sla_attainment = 0.0;      // answers available by the deadline
  double on_device_reliance = 0.0;  // answers taken from the on-device model
  double local_runs = 0.0;          // requests on which the on-device model ran (its energy cost)
  double mean_latency_ms = 0.0;     // of the answer used
  double p50_latency_ms = 0.0;
  double p95_latency_ms = 0.0;
  double p99_latency_ms = 0.0;
  std::vector<double> usage;  // share of requests sent to each remote variant
};

// Runs every (policy, SLA) point. All policies see the same network draws at an SLA point.
Expected<std::vector<SimulationRow>> simulate(const ZooProfile& zoo, const NetworkModel& network,
                                              const SimulationConfig& config);

nlohmann::json simulation_rows_to_json(const ZooProfile& zoo, const std::vector<SimulationRow>& rows);

}  // namespace edgefleet
