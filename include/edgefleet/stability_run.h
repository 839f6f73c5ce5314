// The instability lab's run: every input of a dataset through every environment's image
// pipeline into one model, top-k answers recorded in a ResultsStore (resumable, shardable).
// Environments that share a stage prefix share its work: each prefix runs once per input.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "edgefleet/classifier.h"
#include "edgefleet/dataset.h"
#include "edgefleet/device_profile.h"
#include "edgefleet/inference_setting.h"
#include "edgefleet/pipeline.h"
#include "edgefleet/results_store.h"

namespace edgefleet {

// One named device setup: the image pipeline and how the model is run ("model" sizes in the
// pipeline are bound to the model's input when the run starts). Its spec is the pipeline's
// with the setting as a last `infer:` stage, e.g.
// "decode:turbojpeg,dct=ifast|resize:opencv,linear,model|crop:center,model|infer:precision=fp16".
struct StabilityEnvironment {
  std::string name;
  DeviceEnvironment environment;
};

// The fleet's devices as environments: pipeline, precision, engine and threads of each.
Expected<std::vector<StabilityEnvironment>> environments_from_fleet(const std::vector<DeviceProfile>& fleet);
// "NAME=SPEC" items, e.g. from --env; an empty pipeline is the card's own preprocessing.
Expected<StabilityEnvironment> parse_environment(const std::string& item);
Expected<StabilityEnvironment> parse_environment(const std::string& name, const std::string& spec);
std::string environment_spec(const StabilityEnvironment& environment);

struct StabilityRunOptions {
  int batch_size = 32;   // inputs per batch: one inference call per environment, one transaction
  int top_k = 5;
  int shard_index = 0;   // this run evaluates inputs i with i % shard_count == shard_index
  int shard_count = 1;
  int threads = 0;       // pipeline workers and inference threads (0 = one per core); an
                         // environment's `threads` setting overrides it for its inference
  std::size_t limit = 0; // first N inputs only (0 = all)
  // Model inputs INT8 environments calibrate on (see calibration_inputs()).
  std::vector<float> calibration;
  std::function<void(std::size_t done, std::size_t total)> progress;
};

struct StabilityRunStats {
  std::size_t inputs = 0;            // in this shard
  std::size_t already_recorded = 0;  // (input, environment) answers found from an earlier run
  std::size_t evaluated = 0;         // answers computed now
  std::size_t failures = 0;          // answers recorded as failures (corrupt input, stage error)
  std::size_t stage_runs = 0;        // pipeline stages executed (shared prefixes run once)
  std::size_t stage_runs_unshared = 0;  // what running every environment independently would take
  // Answers taken from another inference instead of running the model: its model input was
  // bit-identical under the same inference setting (a setting that differs, threads included,
  // is never shared: that difference is what such an axis measures). Within a batch the
  // inputs are compared in full; across batches (a photo that appears twice) by a 128-bit
  // digest of their bytes, the last 64 MB of answers kept.
  std::size_t inferences_shared = 0;
  // Per distinct inference setting ("" = default): the engine that ran it, with what it
  // simulated (Classifier::engine()).
  std::map<std::string, std::string> engines;
  // The raw developers the environments run ("dcraw 9.28", ...), also in the store's fingerprint.
  std::vector<std::string> raw_developers;
};

// A fingerprint of what the run computes (model file hash, dataset, environments) for the
// store's resume check.
std::string stability_fingerprint(const ModelCard& card, const Dataset& data,
                                  const std::vector<StabilityEnvironment>& environments);

// `count` inputs spread evenly over `data`, preprocessed as the card says: the held-out set
// INT8 environments calibrate their activation ranges on.
Expected<std::vector<float>> calibration_inputs(const Dataset& data, const InputContract& contract, std::size_t count);

// What inputs `indices` of `data` become in every environment (shared prefixes run once):
// tensors[k][e] is the model input of indices[k] in environment e, empty where errors[k][e]
// says why it failed. "model" sizes are bound to `contract` first. Runs on `threads` workers.
struct EnvironmentInputs {
  std::vector<std::vector<std::vector<float>>> tensors;
  std::vector<std::vector<std::string>> errors;
};
Expected<EnvironmentInputs> environment_inputs(const InputContract& contract, const Dataset& data,
                                               const std::vector<std::size_t>& indices,
                                               const std::vector<StabilityEnvironment>& environments, int threads = 0);

// One classifier per distinct inference setting of `environments` (engine opencv-dnn runs
// the ONNX copy beside the card's model file, NAME.onnx with its card). INT8 settings
// calibrate on `calibration`; `threads` applies where a setting names none. Settings that
// differ only in threads share one classifier: set its threads before each inference.
using SettingClassifiers = std::map<InferenceSetting, std::shared_ptr<Classifier>>;
Expected<SettingClassifiers> load_setting_classifiers(const ModelCard& card,
                                                      const std::vector<StabilityEnvironment>& environments,
                                                      const std::vector<float>& calibration, int threads = 0);
// The classifier of `setting`, ready to infer: its threads set to the setting's (else `threads`).
Classifier& classifier_for(const SettingClassifiers& classifiers, const InferenceSetting& setting, int threads = 0);

// Loads the model once per distinct inference setting of `environments` (as above).
Expected<StabilityRunStats> run_stability(const ModelCard& card, const Dataset& data,
                                          const std::vector<StabilityEnvironment>& environments, ResultsStore& store,
                                          const StabilityRunOptions& options = {});

}  // namespace edgefleet
