// A stability experiment: which environments one run compares — a fleet's devices, built-in
// axes and named specs — read from an experiment file or gathered from the command line, and
// resolved into environments in that order.
//
// Experiment file: {"description": TEXT, "fleet": DIR|"builtin"|"phones", "axes": [NAME...],
//                   "environments": [{"name": N, "spec": S}...], "vary": "all"|"capture"|
//                   "deployment", "capture": SPEC, "deployment": SPEC, "repeats": N,
//                   "common_isp": "camera:ISP,..."}
//                   (every field optional)
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "edgefleet/stability_run.h"

namespace edgefleet {

// Which part of each fleet device's environment a run varies (see split_capture): all of it,
// its capture only (every device then shares `deployment`: the paper's end-to-end
// experiment, one app evaluating every phone's photos), or its deployment only (every device
// starts from `capture`'s file).
enum class FleetPart { kAll, kCapture, kDeployment };

struct StabilityExperiment {
  std::string fleet;                                // a fleet folder, "builtin" or "phones"; "" = none
  FleetPart vary = FleetPart::kAll;
  // The shared part: its pipeline, and for a shared deployment its inference setting
  // (default: no stages = the file decoded and the card's own preprocessing, fp32 libtorch).
  StabilityEnvironment capture{"capture", {}};
  StabilityEnvironment deployment{"deployment", {}};
  // Each device photographs every input this many times, as DEVICE/rK (K = 1..N) with the
  // screen and camera seeds of the K-th session: per_source then gives each device's repeat
  // instability (the paper's Fig. 3d). 1 = once, under the device's own name.
  int repeats = 1;
  // When set, every fleet device's camera keeps its sensor but develops the raw with this
  // ISP (with_isp_of): the paper's §9.2 mitigation.
  std::optional<CameraOptions> common_isp;
  std::vector<std::string> axes;                    // stability_axis_names()
  std::vector<StabilityEnvironment> environments;   // named specs, parsed
};

// Messages name the file and the field.
Expected<StabilityExperiment> read_experiment(const std::string& path);

// A camera stage spec ("camera:opencv,demosaic=ea") as the ISP every device shares.
Expected<CameraOptions> parse_common_isp(const std::string& spec);

const char* fleet_part_name(FleetPart part);
Expected<FleetPart> parse_fleet_part(const std::string& name);  // all | capture | deployment

// The fleet's devices (their varied part joined to the shared one, repeated), then each
// axis's environments, then the named ones. Fails on a name
// given twice or on fewer than two environments. `encoded_source` as in axis_environments.
Expected<std::vector<StabilityEnvironment>> experiment_environments(const StabilityExperiment& experiment, bool encoded_source);

}  // namespace edgefleet
