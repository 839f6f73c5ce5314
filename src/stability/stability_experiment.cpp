#include "edgefleet/stability_experiment.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "edgefleet/device_profile.h"
#include "edgefleet/stability_axes.h"

namespace edgefleet {

Expected<StabilityExperiment> read_experiment(const std::string& path) {
  std::ifstream in(path);
  if (!in) return not_found("experiment file '" + path + "' does not exist or cannot be read");
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return invalid_argument(path + ": not a JSON object");
  for (const auto& [key, value] : j.items()) {
    if (key != "fleet" && key != "axes" && key != "environments" && key != "description") {
      return invalid_argument(path + ": unknown field '" + key + "' (allowed: description, fleet, axes, environments)");
    }
  }
  StabilityExperiment experiment;
  if (j.contains("fleet")) {
    if (!j["fleet"].is_string()) return invalid_argument(path + ": fleet: not a folder name or 'builtin'");
    experiment.fleet = j["fleet"].get<std::string>();
  }
  if (j.contains("axes")) {
    if (!j["axes"].is_array()) return invalid_argument(path + ": axes: not a list of axis names");
    for (const auto& axis : j["axes"]) {
      if (!axis.is_string()) return invalid_argument(path + ": axes: not a list of axis names");
      experiment.axes.push_back(axis.get<std::string>());
    }
  }
  if (j.contains("environments")) {
    if (!j["environments"].is_array()) return invalid_argument(path + ": environments: not a list");
    for (const auto& e : j["environments"]) {
      if (!e.is_object() || !e.value("name", nlohmann::json()).is_string() || !e.value("spec", nlohmann::json()).is_string()) {
        return invalid_argument(path + ": environments: each needs a string name and spec");
      }
      auto environment = parse_environment(e["name"].get<std::string>(), e["spec"].get<std::string>());
      if (!environment) return Status(environment.status().code(), path + ": " + environment.status().message());
      experiment.environments.push_back(std::move(*environment));
    }
  }
  return experiment;
}

Expected<std::vector<StabilityEnvironment>> experiment_environments(const StabilityExperiment& experiment, bool encoded_source) {
  std::vector<StabilityEnvironment> environments;
  if (!experiment.fleet.empty()) {
    auto fleet = read_fleet(experiment.fleet);
    if (!fleet) return fleet.status();
    auto from_fleet = environments_from_fleet(*fleet);
    if (!from_fleet) return from_fleet.status();
    environments = std::move(*from_fleet);
  }
  for (const auto& axis : experiment.axes) {
    auto from_axis = axis_environments(axis, encoded_source);
    if (!from_axis) return from_axis.status();
    for (auto& e : *from_axis) environments.push_back(std::move(e));
  }
  environments.insert(environments.end(), experiment.environments.begin(), experiment.environments.end());
  std::set<std::string> names;
  for (const auto& e : environments) {
    if (!names.insert(e.name).second) return invalid_argument("environment '" + e.name + "' is given twice");
  }
  if (environments.size() < 2) return invalid_argument("a stability run needs at least two environments");
  return environments;
}

}  // namespace edgefleet
