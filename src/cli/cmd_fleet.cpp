// edgefleet fleet list|show|validate
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/cli_common.h"
#include "edgefleet/device_profile.h"
#include "edgefleet/pipeline.h"

namespace edgefleet::cli {
namespace {

struct FleetArgs {
  std::string dir = "builtin";
  std::vector<std::string> files;
  std::string device;
  bool json = false;
};

// "opencv/ea" and "jpeg q95": the camera and codec stages of a pipeline, for the table.
std::pair<std::string, std::string> camera_and_codec(const Pipeline& pipeline) {
  std::string camera = "-", codec = "-";
  for (const auto& stage : pipeline.stages) {
    if (const auto* c = std::get_if<CameraStage>(&stage)) {
      camera = std::string(isp_engine_name(c->options.isp)) + "/" + c->options.demosaic;
    } else if (const auto* e = std::get_if<EncodeStage>(&stage)) {
      codec = image_format_name(e->options.format);
      if (e->options.format != ImageFormat::kPng) {
        codec += " q" + std::to_string(e->options.quality ? e->options.quality : default_quality(e->options.format));
      }
    }
  }
  return {camera, codec};
}

int run_list(const FleetArgs& args) {
  auto fleet = read_fleet(args.dir);
  if (!fleet) return fail(fleet.status());
  if (args.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& p : *fleet) out.push_back(device_profile_to_json(p));
    std::cout << out.dump(1) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& p : *fleet) {
    const std::string network = p.network.trace.empty()
                                    ? fixed(p.network.rtt_ms_mean, 1) + " +- " + fixed(p.network.rtt_ms_std, 1) + " ms"
                                    : "trace " + p.network.trace;
    const auto [camera, codec] = camera_and_codec(p.environment.pipeline);
    rows.push_back({p.name, p.device_class, fixed(p.hardware.peak_gflops, 1), fixed(p.hardware.memory_bandwidth_gbs, 1),
                    fixed(p.hardware.memory_mb, 0), camera, codec, precision_name(p.environment.inference.precision), network});
  }
  std::cout << format_table(
      {"device", "class", "GFLOP/s", "GB/s", "memory MB", "camera/ISP", "codec", "precision", "network"}, rows);
  return 0;
}

// One device: its profile as read, and its environment as a stability spec would give it.
int run_show(const FleetArgs& args) {
  auto device = find_device(args.dir, args.device);
  if (!device) return fail(device.status());
  if (args.json) {
    std::cout << device_profile_to_json(*device).dump(1) << "\n";
    return 0;
  }
  const DeviceEnvironment& e = device->environment;
  const std::string setting = inference_setting_to_string(e.inference);
  std::cout << device->name << " (" << device->device_class << "): " << device->description << "\n"
            << "hardware  " << device->hardware.soc << ", " << fixed(device->hardware.peak_gflops, 1) << " GFLOP/s, "
            << fixed(device->hardware.memory_bandwidth_gbs, 1) << " GB/s, " << fixed(device->hardware.memory_mb, 0) << " MB\n"
            << "pipeline  " << (e.pipeline.stages.empty() ? "(the model card's own preprocessing)" : pipeline_to_string(e.pipeline)) << "\n"
            << "inference " << (setting.empty() ? "fp32, libtorch" : setting)
            << "\n";
  for (const auto& stage : e.pipeline.stages) std::cout << "  " << stage_to_string(stage) << "\n";
  return 0;
}

int run_validate(const FleetArgs& args) {
  int failures = 0;
  for (const auto& file : args.files) {
    auto profile = read_device_profile(file);
    if (!profile) {
      fail(profile.status());
      ++failures;
    } else {
      std::cout << file << ": ok (" << profile->name << ")\n";
    }
  }
  return failures == 0 ? 0 : kExitFailure;
}

}  // namespace

Runner add_fleet_command(CLI::App& app) {
  auto args = std::make_shared<FleetArgs>();
  auto* fleet = app.add_subcommand("fleet", "Device profiles: list a fleet, validate profile files");
  fleet->require_subcommand(1);
  auto* list = fleet->add_subcommand("list", "Table of the devices in a fleet folder");
  list->add_option("--fleet", args->dir, "Fleet folder, builtin (the span fleet) or phones (the paper's five phones)")->capture_default_str();
  list->add_flag("--json", args->json, "Print the profiles as JSON");
  auto* show = fleet->add_subcommand("show", "One device: hardware, image pipeline (canonical form) and inference setting");
  show->add_option("device", args->device, "Device name")->required();
  show->add_option("--fleet", args->dir, "Fleet folder, builtin (the span fleet) or phones (the paper's five phones)")->capture_default_str();
  show->add_flag("--json", args->json, "Print the profile as JSON");
  auto* validate = fleet->add_subcommand("validate", "Check device profile files; one line per file");
  validate->add_option("files", args->files, "Profile files")->required()->check(CLI::ExistingFile);
  return [args, list, show, validate] {
    if (list->parsed()) return run_list(*args);
    if (show->parsed()) return run_show(*args);
    if (validate->parsed()) return run_validate(*args);
    return 2;
  };
}

}  // namespace edgefleet::cli
