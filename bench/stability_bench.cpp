// Image-environment evaluations per second of a stability run: all environments in one run
// (shared prefixes, batched inference, parallel pipelines) vs each environment run on its own.
// Wall-clock time (the point is using both cores), best of `rounds` alternating rounds.
// Prints one JSON object. Usage: bench_stability CARD DATA LIMIT ENV_FILE [ROUNDS=2]
// ROUNDS=0: the together run once and nothing else (for profiling it, e.g. under perf).
// ENV_FILE "all-axes": every `--axis` environment (INT8 calibrated on the first 100 photos;
// the engine axis needs the card's ONNX copy beside it).
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "core/allocator.h"
#include "edgefleet/dataset.h"
#include "edgefleet/model_card.h"
#include "edgefleet/stability_axes.h"
#include "edgefleet/stability_run.h"

using namespace edgefleet;

namespace {

[[noreturn]] void die(const Status& s) {
  std::cerr << "bench_stability: " << s.to_string() << "\n";
  std::exit(1);
}

// Seconds for one run of `environments` into a fresh store.
double timed_run(const ModelCard& card, const Dataset& data, const std::vector<StabilityEnvironment>& environments,
                 std::size_t limit, const std::vector<float>& calibration, const std::string& dir) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto store = ResultsStore::open(dir + "/results.sqlite");
  if (!store) die(store.status());
  StabilityRunOptions options;
  options.limit = limit;
  options.calibration = calibration;
  const auto start = std::chrono::steady_clock::now();
  auto stats = run_stability(card, data, environments, **store, options);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!stats) die(stats.status());
  if (stats->failures) die(internal_error(std::to_string(stats->failures) + " evaluations failed"));
  return seconds;
}

}  // namespace

int main(int argc, char** argv) {
  // As the edgefleet binary runs (src/cli/main.cpp): freed inference buffers kept for reuse.
  keep_freed_memory_for_reuse();
  if (argc < 5) {
    std::cerr << "usage: bench_stability CARD DATA LIMIT ENV_FILE [ROUNDS=2]\n";
    return 2;
  }
  auto card = resolve_model(argv[1]);
  if (!card) die(card.status());
  auto data = open_dataset(argv[2]);
  if (!data) die(data.status());
  const std::size_t limit = std::stoul(argv[3]);
  std::vector<StabilityEnvironment> environments;
  std::vector<float> calibration;
  if (std::string(argv[4]) == "all-axes") {
    for (const auto& axis : stability_axis_names()) {
      auto of_axis = axis_environments(axis, true);
      if (!of_axis) die(of_axis.status());
      environments.insert(environments.end(), of_axis->begin(), of_axis->end());
    }
    auto inputs = calibration_inputs(**data, card->input, 100);
    if (!inputs) die(inputs.status());
    calibration = std::move(*inputs);
  } else {
    std::ifstream in(argv[4]);
    if (!in) die(io_error(std::string("cannot read '") + argv[4] + "'"));
    for (std::string line; std::getline(in, line);) {
      if (line.empty() || line[0] == '#') continue;
      auto e = parse_environment(line);
      if (!e) die(e.status());
      environments.push_back(std::move(*e));
    }
  }
  const int rounds = argc > 5 ? std::stoi(argv[5]) : 2;
  const std::string work = std::filesystem::temp_directory_path() / ("bench_stability_" + std::to_string(getpid()));
  const double evaluations = static_cast<double>(std::min(limit, (*data)->size()) * environments.size());
  double together = 1e30, independent = 1e30;
  if (rounds == 0) {
    together = timed_run(*card, **data, environments, limit, calibration, work + "/together");
    std::filesystem::remove_all(work);
    std::cout << nlohmann::json{{"images", std::min(limit, (*data)->size())}, {"environments", environments.size()},
                                {"together_evals_per_s", evaluations / together}}.dump()
              << "\n";
    return 0;
  }
  for (int r = 0; r < rounds; ++r) {
    together = std::min(together, timed_run(*card, **data, environments, limit, calibration, work + "/together"));
    double sum = 0.0;
    for (std::size_t e = 0; e < environments.size(); ++e) {
      // A one-environment run: the same code with nothing to share.
      sum += timed_run(*card, **data, {environments[e]}, limit, calibration, work + "/alone");
    }
    independent = std::min(independent, sum);
  }
  std::filesystem::remove_all(work);
  nlohmann::json out = {{"model", card->name},
                        {"images", std::min(limit, (*data)->size())},
                        {"environments", environments.size()},
                        {"together_evals_per_s", evaluations / together},
                        {"independent_evals_per_s", evaluations / independent},
                        {"ratio", independent / together}};
  std::cout << out.dump() << "\n";
  return 0;
}
