// A stability experiment: which environments one run compares — a fleet's devices, built-in
// axes and named specs — read from an experiment file or gathered from the command line, and
// resolved into environments in that order.
//
// Experiment file: {"description": TEXT, "fleet": DIR|"builtin", "axes": [NAME...],
//                   "environments": [{"name": N, "spec": S}...]}   (every field optional)
#pragma once

#include <string>
#include <vector>

#include "edgefleet/stability_run.h"

namespace edgefleet {

struct StabilityExperiment {
  std::string fleet;                                // a fleet folder or "builtin"; "" = none
  std::vector<std::string> axes;                    // stability_axis_names()
  std::vector<StabilityEnvironment> environments;   // named specs, parsed
};

// Messages name the file and the field.
Expected<StabilityExperiment> read_experiment(const std::string& path);

// The fleet's devices, then each axis's environments, then the named ones. Fails on a name
// given twice or on fewer than two environments. `encoded_source` as in axis_environments.
Expected<std::vector<StabilityEnvironment>> experiment_environments(const StabilityExperiment& experiment, bool encoded_source);

}  // namespace edgefleet
