// Profiling a model repository: measures each variant's execution latency on this machine
// (warm-up, then timed runs through a LatencyTracker in cumulative mode) and writes the zoo
// profile the simulator and the server read. Uses the process-wide engine thread pools.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "edgefleet/simulator.h"

namespace edgefleet {

struct ProfileOptions {
  int warmup = 10;
  int runs = 50;
  int batch = 1;
  int threads = 0;  // 0 = one per core
  std::function<void(const std::string& variant, double mean_ms, double std_ms)> on_variant;
};

// Every model card under `dir` (recursively) is a variant; variants are grouped into tasks by
// the card's `task` field, else the folder name. Each task's fastest variant also becomes its
// on-device model. Fails with not_found for a folder without cards, invalid_argument for a
// card without accuracy (the selection needs it), or the loader's error.
Expected<std::vector<ZooProfile>> profile_repository(const std::string& dir, const ProfileOptions& options = {});

}  // namespace edgefleet
