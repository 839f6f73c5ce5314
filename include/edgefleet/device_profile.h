// DeviceProfile: one device of a fleet — its hardware (porting budget), its image pipeline
// and inference setting (its stability environment) and its network (serving).
// Fleet: a folder of profiles. Value types; thread-safe to share read-only.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "edgefleet/inference_setting.h"
#include "edgefleet/pipeline.h"
#include "edgefleet/status.h"

namespace edgefleet {

struct Hardware {
  std::string soc;                    // chip or board, as the spec sheet names it
  double peak_gflops = 0.0;           // peak compute, GFLOP/s
  double memory_bandwidth_gbs = 0.0;  // GB/s
  double memory_mb = 0.0;             // memory available to the model, MB
  std::vector<std::string> sources;   // spec sheets the numbers come from
};

// What the device does between the scene and the answer: its image pipeline, from the scene
// to the model's input (split_capture() parts it into capture and deployment) (e.g. camera:opencv,demosaic=ea|encode:jpeg,quality=95|
// decode:turbojpeg|resize:opencv,linear,model|crop:center,model; empty = the card's own
// preprocessing of the source picture), and its inference setting (precision, engine,
// threads). Parsed once, when the profile is read.
struct DeviceEnvironment {
  Pipeline pipeline;
  InferenceSetting inference;
};

struct DeviceNetwork {
  double rtt_ms_mean = 0.0;  // round trip, ms
  double rtt_ms_std = 0.0;
  std::string trace;  // measured transfer times (one per line, ms), relative to the profile; overrides mean/std
};

struct DeviceProfile {
  std::string name;
  std::string description;
  std::string device_class;  // microcontroller | single-board | edge-gpu | phone | edge-server | datacenter
  Hardware hardware;
  DeviceEnvironment environment;
  DeviceNetwork network;
  // The `latency_model` section `edgefleet device calibrate --profile` adds (JSON text; empty
  // when none): per-kernel predictors measured on the device. The port layer reads it.
  std::string latency_model;
  std::string path;  // the file it was read from (not serialised)
};

// Validates and parses; messages name the file, the field and the allowed values.
Expected<DeviceProfile> device_profile_from_json(const nlohmann::json& j, const std::string& origin);
nlohmann::json device_profile_to_json(const DeviceProfile& profile);
Expected<DeviceProfile> read_device_profile(const std::string& path);

// The folder a fleet name stands for: "builtin" = builtin_fleet_dir() (the span fleet, from a
// microcontroller to a V100), "phones" = its phones/ folder (the instability paper's five
// phones, calibrated), anything else = that folder.
std::string fleet_dir(const std::string& name);

// Reads every *.json in fleet_dir(name), sorted by name. Fails on the
// first invalid profile, on duplicated device names, or on a folder with no profiles.
Expected<std::vector<DeviceProfile>> read_fleet(const std::string& name);
// The profile of the device called `name` in the fleet `dir` (a name as above).
Expected<DeviceProfile> find_device(const std::string& dir, const std::string& name);

// The built-in fleet folder (fleet/ in the installed data, or $EDGEFLEET_FLEET_DIR).
std::string builtin_fleet_dir();

}  // namespace edgefleet
