// The instability lab's run: every input of a dataset through every environment's image
// pipeline into one model, top-k answers recorded in a ResultsStore (resumable, shardable).
// Environments that share a stage prefix share its work: each prefix runs once per input.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "edgefleet/classifier.h"
#include "edgefleet/dataset.h"
#include "edgefleet/device_profile.h"
#include "edgefleet/pipeline.h"
#include "edgefleet/results_store.h"

namespace edgefleet {

struct StabilityEnvironment {
  std::string name;
  Pipeline pipeline;  // "model" sizes are bound to the model's input when the run starts
};

// The fleet's devices as environments (their pipelines; precision and engine come later).
Expected<std::vector<StabilityEnvironment>> environments_from_fleet(const std::vector<DeviceProfile>& fleet);
// "name=spec" items, e.g. from --env.
Expected<StabilityEnvironment> parse_environment(const std::string& item);

struct StabilityRunOptions {
  int batch_size = 32;   // inputs per batch: one inference call per environment, one transaction
  int top_k = 5;
  int shard_index = 0;   // this run evaluates inputs i with i % shard_count == shard_index
  int shard_count = 1;
  int threads = 0;       // pipeline workers (0 = one per core); inference uses the classifier's
  std::size_t limit = 0; // first N inputs only (0 = all)
  std::function<void(std::size_t done, std::size_t total)> progress;
};

struct StabilityRunStats {
  std::size_t inputs = 0;            // in this shard
  std::size_t already_recorded = 0;  // (input, environment) answers found from an earlier run
  std::size_t evaluated = 0;         // answers computed now
  std::size_t failures = 0;          // answers recorded as failures (corrupt input, stage error)
  std::size_t stage_runs = 0;        // pipeline stages executed (shared prefixes run once)
  std::size_t stage_runs_unshared = 0;  // what running every environment independently would take
};

// A fingerprint of what the run computes (model file hash, dataset, environments) for the
// store's resume check.
std::string stability_fingerprint(const ModelCard& card, const Dataset& data,
                                  const std::vector<StabilityEnvironment>& environments);

Expected<StabilityRunStats> run_stability(Classifier& classifier, const Dataset& data,
                                          const std::vector<StabilityEnvironment>& environments, ResultsStore& store,
                                          const StabilityRunOptions& options = {});

}  // namespace edgefleet
