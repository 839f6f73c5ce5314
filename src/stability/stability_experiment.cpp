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
    static const std::set<std::string> kFields = {"description", "fleet", "axes", "environments", "vary",
                                                  "capture", "deployment", "repeats", "common_isp"};
    if (!kFields.count(key)) {
      return invalid_argument(path + ": unknown field '" + key +
                              "' (allowed: description, fleet, axes, environments, vary, capture, deployment, repeats, common_isp)");
    }
  }
  StabilityExperiment experiment;
  if (j.contains("vary")) {
    auto part = j["vary"].is_string() ? parse_fleet_part(j["vary"].get<std::string>()) : invalid_argument("not a string");
    if (!part) return invalid_argument(path + ": vary: " + part.status().message());
    experiment.vary = *part;
  }
  for (auto* shared : {&experiment.capture, &experiment.deployment}) {
    if (!j.contains(shared->name)) continue;
    if (!j[shared->name].is_string()) return invalid_argument(path + ": " + shared->name + ": not a pipeline spec");
    auto parsed = parse_environment(shared->name, j[shared->name].get<std::string>());
    if (!parsed) return Status(parsed.status().code(), path + ": " + parsed.status().message());
    *shared = std::move(*parsed);
  }
  if (j.contains("repeats")) {
    if (!j["repeats"].is_number_integer() || j["repeats"].get<int>() < 1 || j["repeats"].get<int>() > 100) {
      return invalid_argument(path + ": repeats: not a whole number in 1..100");
    }
    experiment.repeats = j["repeats"].get<int>();
  }
  if (j.contains("common_isp")) {
    auto isp = j["common_isp"].is_string() ? parse_common_isp(j["common_isp"].get<std::string>()) : invalid_argument("not a camera stage spec");
    if (!isp) return invalid_argument(path + ": common_isp: " + isp.status().message());
    experiment.common_isp = *isp;
  }
  if (j.contains("fleet")) {
    if (!j["fleet"].is_string()) return invalid_argument(path + ": fleet: not a folder name, 'builtin' or 'phones'");
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

Expected<CameraOptions> parse_common_isp(const std::string& spec) {
  auto stage = parse_stage(spec);
  if (!stage) return stage.status();
  if (const auto* camera = std::get_if<CameraStage>(&*stage)) return camera->options;
  return invalid_argument("'" + spec + "' is not a camera stage (camera:ISP,...)");
}

const char* fleet_part_name(FleetPart part) {
  switch (part) {
    case FleetPart::kCapture: return "capture";
    case FleetPart::kDeployment: return "deployment";
    default: return "all";
  }
}

Expected<FleetPart> parse_fleet_part(const std::string& name) {
  for (FleetPart part : {FleetPart::kAll, FleetPart::kCapture, FleetPart::kDeployment}) {
    if (name == fleet_part_name(part)) return part;
  }
  return invalid_argument("'" + name + "' is not one of: all, capture, deployment");
}

namespace {

// A device's environment with only `vary` taken from it (and its ISP replaced by the common one).
DeviceEnvironment vary_part(DeviceEnvironment device, const StabilityExperiment& experiment) {
  if (experiment.common_isp) {
    for (auto& stage : device.pipeline.stages) {
      if (auto* camera = std::get_if<CameraStage>(&stage)) camera->options = with_isp_of(camera->options, *experiment.common_isp);
    }
  }
  const PipelineParts parts = split_capture(device.pipeline);
  switch (experiment.vary) {
    case FleetPart::kCapture:
      return {concatenate(parts.capture, experiment.deployment.environment.pipeline), experiment.deployment.environment.inference};
    case FleetPart::kDeployment:
      return {concatenate(experiment.capture.environment.pipeline, parts.deployment), device.inference};
    default: return device;
  }
}

// The K-th session's seeds: another realisation of the screen set-up and the sensor noise.
Pipeline session(Pipeline pipeline, int k) {
  const std::uint64_t offset = 1000ULL * static_cast<std::uint64_t>(k - 1);
  for (auto& stage : pipeline.stages) {
    if (auto* screen = std::get_if<ScreenStage>(&stage)) screen->options.seed += offset;
    if (auto* camera = std::get_if<CameraStage>(&stage)) camera->options.seed += offset;
  }
  return pipeline;
}

}  // namespace

Expected<std::vector<StabilityEnvironment>> experiment_environments(const StabilityExperiment& experiment, bool encoded_source) {
  std::vector<StabilityEnvironment> environments;
  if (!experiment.fleet.empty()) {
    auto fleet = read_fleet(experiment.fleet);
    if (!fleet) return fleet.status();
    auto from_fleet = environments_from_fleet(*fleet);
    if (!from_fleet) return from_fleet.status();
    for (const auto& device : *from_fleet) {
      const DeviceEnvironment varied = vary_part(device.environment, experiment);
      if (experiment.repeats == 1) {
        environments.push_back({device.name, varied});
        continue;
      }
      for (int k = 1; k <= experiment.repeats; ++k) {
        environments.push_back({device.name + "/r" + std::to_string(k), {session(varied.pipeline, k), varied.inference}});
      }
    }
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
