#include "edgefleet/simulator.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/data_dir.h"
#include "serve/network_estimate.h"

namespace edgefleet {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

double parse_number(const std::string& text, const std::string& spec, const std::string& what) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(value) || value < 0) {
    throw Error(invalid_argument("network '" + spec + "': " + what + " '" + text + "' is not a non-negative number"));
  }
  return value;
}

// Normal, truncated at zero by redrawing (a network time is never negative).
class NormalNetwork final : public NetworkModel {
 public:
  NormalNetwork(double mean, double std) : mean_(mean), std_(std) {}
  std::string describe() const override {
    std::ostringstream out;
    out << "normal(" << mean_ << " ms, " << std_ << " ms)";
    return out.str();
  }
  double sample_ms(Rng& rng) const override {
    if (std_ == 0.0) return mean_;
    std::normal_distribution<double> draw(mean_, std_);
    for (int i = 0; i < 64; ++i) {
      const double v = draw(rng);
      if (v >= 0.0) return v;
    }
    return 0.0;
  }

 private:
  double mean_, std_;
};

class TraceNetwork final : public NetworkModel {
 public:
  TraceNetwork(std::string path, std::vector<double> times) : path_(std::move(path)), times_(std::move(times)) {}
  std::string describe() const override { return "trace " + path_ + " (" + std::to_string(times_.size()) + " times)"; }
  double sample_ms(Rng& rng) const override {
    std::uniform_int_distribution<std::size_t> pick(0, times_.size() - 1);
    return times_[pick(rng)];
  }

 private:
  std::string path_;
  std::vector<double> times_;
};

// The paper's reading of a transfer-time sample: T_nw = 2 x T_input.
class InputTransferNetwork final : public NetworkModel {
 public:
  explicit InputTransferNetwork(std::unique_ptr<NetworkModel> input) : input_(std::move(input)) {}
  std::string describe() const override { return "T_nw = 2 x T_input, T_input ~ " + input_->describe(); }
  double sample_ms(Rng& rng) const override { return 2.0 * input_->sample_ms(rng); }

 private:
  std::unique_ptr<NetworkModel> input_;
};

double sample_execution(const VariantProfile& v, Rng& rng) {
  if (v.std_ms <= 0.0) return v.mean_ms;
  std::normal_distribution<double> draw(v.mean_ms, v.std_ms);
  return std::max(0.0, draw(rng));
}

// Nearest-rank percentile; reorders `values`.
double percentile(std::vector<double>& values, double p) {
  if (values.empty()) return 0.0;
  const double rank = std::ceil(p * static_cast<double>(values.size())) - 1.0;
  const std::size_t k = static_cast<std::size_t>(std::clamp(rank, 0.0, static_cast<double>(values.size() - 1)));
  std::nth_element(values.begin(), values.begin() + static_cast<long>(k), values.end());
  return values[k];
}

VariantProfile parse_variant(const json& j, const std::string& where) {
  if (!j.is_object()) throw Error(invalid_argument(where + " must be an object"));
  VariantProfile v;
  try {
    v.name = j.at("name").get<std::string>();
    v.accuracy = j.at("accuracy").get<double>();
    v.mean_ms = j.at("mean_ms").get<double>();
    v.std_ms = j.value("std_ms", 0.0);
  } catch (const json::exception&) {
    throw Error(invalid_argument(where + " needs name (string), accuracy, mean_ms and std_ms (numbers)"));
  }
  if (v.accuracy < 0 || v.accuracy > 1) throw Error(invalid_argument(where + ".accuracy must be a fraction in [0,1]"));
  if (v.mean_ms < 0 || v.std_ms < 0) throw Error(invalid_argument(where + ": mean_ms and std_ms must be non-negative"));
  return v;
}

json variant_json(const VariantProfile& v) {
  return {{"name", v.name}, {"accuracy", v.accuracy}, {"mean_ms", v.mean_ms}, {"std_ms", v.std_ms}};
}

}  // namespace

const char* network_sample_name(NetworkSample sample) { return sample == NetworkSample::kInput ? "input" : "round-trip"; }

std::vector<std::string> network_sample_names() { return {"round-trip", "input"}; }

namespace {

std::unique_ptr<NetworkModel> parse_sampled_network(const std::string& spec) {
  {
    const auto colon = spec.find(':');
    const std::string kind = spec.substr(0, colon);
    const std::string rest = colon == std::string::npos ? "" : spec.substr(colon + 1);
    if (kind == "normal" || kind == "cv") {
      const auto second = rest.find(':');
      if (second == std::string::npos) {
        throw Error(invalid_argument("network '" + spec + "': expected " + kind + (kind == "cv" ? ":MEAN_MS:CV" : ":MEAN_MS:STD_MS")));
      }
      const double mean = parse_number(rest.substr(0, second), spec, "mean");
      const double spread = parse_number(rest.substr(second + 1), spec, kind == "cv" ? "coefficient of variation" : "std");
      return std::make_unique<NormalNetwork>(mean, kind == "cv" ? spread * mean : spread);
    }
    if (kind == "trace") {
      std::ifstream in(rest);
      if (!in) throw Error(not_found("network trace '" + rest + "' does not exist or cannot be read"));
      std::vector<double> times;
      std::string line;
      int number = 0;
      while (std::getline(in, line)) {
        ++number;
        line.erase(0, line.find_first_not_of(" \t\r"));
        line.erase(line.find_last_not_of(" \t\r") + 1);
        if (line.empty() || line[0] == '#') continue;
        times.push_back(parse_number(line, spec, "line " + std::to_string(number)));
      }
      if (times.empty()) throw Error(invalid_argument("network trace '" + rest + "' holds no times"));
      return std::make_unique<TraceNetwork>(rest, std::move(times));
    }
    throw Error(invalid_argument("network '" + spec + "': expected normal:MEAN_MS:STD_MS, cv:MEAN_MS:CV or trace:FILE"));
  }
}

}  // namespace

Expected<std::unique_ptr<NetworkModel>> parse_network_model(const std::string& spec, NetworkSample sample) {
  return capture([&]() -> std::unique_ptr<NetworkModel> {
    auto network = parse_sampled_network(spec);
    if (sample == NetworkSample::kInput) return std::make_unique<InputTransferNetwork>(std::move(network));
    return network;
  });
}

Expected<ZooProfile> read_zoo_profile(const std::string& name_or_path) {
  return capture([&]() -> ZooProfile {
    std::string path = name_or_path;
    if (!fs::exists(path)) {
      const std::string builtin = data_dir() + "/data/zoos/" + name_or_path + ".json";
      if (!fs::exists(builtin)) {
        throw Error(not_found("zoo '" + name_or_path + "' is neither a file nor a built-in zoo (paper-table3, paper-table3-fictional)"));
      }
      path = builtin;
    }
    std::ifstream in(path);
    json j = json::parse(in, nullptr, false);
    if (j.is_discarded()) throw Error(invalid_argument(path + ": not valid JSON"));
    if (!j.is_object() || !j.contains("variants") || !j["variants"].is_array() || j["variants"].empty()) {
      throw Error(invalid_argument(path + ": expected an object with a non-empty 'variants' list"));
    }
    ZooProfile zoo;
    zoo.name = j.value("name", fs::path(path).stem().string());
    for (std::size_t i = 0; i < j["variants"].size(); ++i) {
      zoo.variants.push_back(parse_variant(j["variants"][i], path + ": variants[" + std::to_string(i) + "]"));
    }
    if (j.contains("on_device") && !j["on_device"].is_null()) zoo.on_device = parse_variant(j["on_device"], path + ": on_device");
    return zoo;
  });
}

json zoo_profile_to_json(const ZooProfile& zoo) {
  json variants = json::array();
  for (const auto& v : zoo.variants) variants.push_back(variant_json(v));
  json j = {{"name", zoo.name}, {"variants", variants}};
  if (zoo.on_device) j["on_device"] = variant_json(*zoo.on_device);
  return j;
}

Expected<std::vector<SimulationRow>> simulate(const ZooProfile& zoo, const NetworkModel& network,
                                              const SimulationConfig& config) {
  if (zoo.variants.empty()) return invalid_argument("simulate: the zoo has no variants");
  if (config.requests <= 0) return invalid_argument("simulate: requests must be positive");
  if (config.slas_ms.empty()) return invalid_argument("simulate: no SLA given");
  if (config.duplicate && !zoo.on_device) {
    return invalid_argument("simulate: duplication needs an on-device model in zoo '" + zoo.name + "'");
  }
  std::vector<std::unique_ptr<SelectionPolicy>> policies;
  for (const auto& name : config.policies.empty() ? policy_names() : config.policies) {
    auto policy = make_policy(name);
    if (!policy) return policy.status();
    policies.push_back(std::move(*policy));
  }
  if (!(config.duplicate_above_miss_probability >= 0 && config.duplicate_above_miss_probability < 1)) {
    return invalid_argument("simulate: the duplication threshold must be a probability in [0, 1)");
  }
  if (!(config.estimate_alpha > 0 && config.estimate_alpha <= 1)) return invalid_argument("simulate: estimate_alpha must be in (0, 1]");
  double fastest_ms = zoo.variants.front().mean_ms;
  for (const auto& v : zoo.variants) fastest_ms = std::min(fastest_ms, v.mean_ms);
  std::vector<SimulationRow> rows;
  std::vector<double> network_ms(static_cast<std::size_t>(config.requests));
  std::vector<double> latencies;
  latencies.reserve(network_ms.size());
  for (std::size_t s = 0; s < config.slas_ms.size(); ++s) {
    const double sla = config.slas_ms[s];
    // Common random numbers: every policy sees the same network at an SLA point.
    Rng network_rng(config.seed * 7919 + s);
    for (auto& n : network_ms) n = network.sample_ms(network_rng);
    for (std::size_t p = 0; p < policies.size(); ++p) {
      Rng rng(config.seed * 104729 + s * 131 + p);
      SimulationRow row;
      row.policy = policies[p]->name();
      row.sla_ms = sla;
      row.requests = config.requests;
      row.usage.assign(zoo.variants.size(), 0.0);
      latencies.clear();
      double accuracy_sum = 0.0;
      int met = 0, local = 0, local_runs = 0;
      // The client's running estimate of T_nw, from the network times it has measured.
      NetworkEstimate estimate(config.estimate_alpha);
      for (double n : network_ms) {
        const bool race = config.duplicate && should_duplicate(estimate, sla, fastest_ms, config.duplicate_above_miss_probability);
        if (race) ++local_runs;
        // The server measures T_input = n / 2 and estimates T_nw = 2 x T_input.
        const Selection choice = policies[p]->select(zoo.variants, {sla, n}, rng);
        const VariantProfile& remote = zoo.variants[choice.variant];
        row.usage[choice.variant] += 1.0;
        const double remote_ms = n + sample_execution(remote, rng);
        double answer_ms = remote_ms;
        double accuracy = remote.accuracy;
        if (race && remote_ms > sla) {
          // The deadline passed without the remote answer: the on-device one is used.
          // Delivered at the deadline, or later if even the local model overran it.
          answer_ms = std::max(sla, sample_execution(*zoo.on_device, rng));
          accuracy = zoo.on_device->accuracy;
          ++local;
        }
        if (answer_ms <= sla) ++met;
        accuracy_sum += accuracy;
        latencies.push_back(answer_ms);
        estimate.add(n);  // the client measures this request's network time
      }
      const double count = config.requests;
      row.aggregate_accuracy = accuracy_sum / count;
      row.sla_attainment = met / count;
      row.on_device_reliance = local / count;
      row.local_runs = local_runs / count;
      double total = 0.0;
      for (double l : latencies) total += l;
      row.mean_latency_ms = total / count;
      row.p50_latency_ms = percentile(latencies, 0.50);
      row.p95_latency_ms = percentile(latencies, 0.95);
      row.p99_latency_ms = percentile(latencies, 0.99);
      for (auto& u : row.usage) u /= count;
      rows.push_back(std::move(row));
    }
  }
  return rows;
}

json simulation_rows_to_json(const ZooProfile& zoo, const std::vector<SimulationRow>& rows) {
  json out = json::array();
  for (const auto& r : rows) {
    json usage = json::object();
    for (std::size_t i = 0; i < r.usage.size(); ++i) usage[zoo.variants[i].name] = r.usage[i];
    out.push_back({{"policy", r.policy},
                   {"sla_ms", r.sla_ms},
                   {"requests", r.requests},
                   {"aggregate_accuracy", r.aggregate_accuracy},
                   {"sla_attainment", r.sla_attainment},
                   {"on_device_reliance", r.on_device_reliance},
                   {"local_runs", r.local_runs},
                   {"mean_latency_ms", r.mean_latency_ms},
                   {"p50_latency_ms", r.p50_latency_ms},
                   {"p95_latency_ms", r.p95_latency_ms},
                   {"p99_latency_ms", r.p99_latency_ms},
                   {"model_usage", usage}});
  }
  return out;
}

}  // namespace edgefleet
