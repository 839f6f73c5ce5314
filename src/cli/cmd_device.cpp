// edgefleet device: a latency model measured on this device (calibrate), and a model's latency
// predicted from it beside the measured one (predict).
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/cli_common.h"
#include "core/atomic_file.h"
#include "core/median.h"
#include "edgefleet/classifier.h"
#include "edgefleet/latency.h"
#include "edgefleet/latency_predictor.h"

namespace edgefleet::cli {
namespace {

struct DeviceArgs {
  std::string out;
  std::string profile;
  CalibrationOptions calibration;
  std::string model;
  std::string latency_model;
  bool measure = false;
  int rounds = 5;
  bool json = false;
};

int run_calibrate(const DeviceArgs& args) {
  nlohmann::json out = nlohmann::json::object();
  if (!args.profile.empty()) {
    std::ifstream in(args.profile);
    out = nlohmann::json::parse(in, nullptr, false);
    if (!in || out.is_discarded() || !out.is_object()) return fail(invalid_argument("--profile: '" + args.profile + "' is not a JSON profile"));
  }
  auto predictor = calibrate_latency(args.calibration, [](const std::string& line) { std::cout << line << std::endl; });
  if (!predictor) return fail(predictor.status());
  out["latency_model"] = latency_predictor_to_json(*predictor);
  try {
    write_file_atomically(out.dump(1) + "\n", args.out);
  } catch (const Error& e) {
    return fail(e.status());
  }
  const GraphLatency& optimized = predictor->optimized;
  const GraphLatency& frozen = predictor->frozen;
  std::vector<std::vector<std::string>> rows;
  for (const auto& [key, samples] : optimized.samples) {
    rows.push_back({key, std::to_string(samples), fixed(100 * optimized.fit_error.at(key), 1),
                    frozen.fit_error.count(key) ? fixed(100 * frozen.fit_error.at(key), 1) : "-"});
  }
  std::cout << format_table({"kernel", "timed", "optimised graph: median fit error %", "frozen graph: median fit error %"}, rows)
            << "call overhead " << fixed(optimized.call_overhead_ms, 4) << " ms (optimised), " << fixed(frozen.call_overhead_ms, 4)
            << " ms (frozen), " << predictor->threads << " threads\n";
  for (const auto& [name, g] : {std::pair<std::string, const GraphLatency*>{"optimised", &optimized}, {"frozen", &frozen}}) {
    if (g->networks == 0) continue;
    std::cout << "in context, " << name << " graph: " << g->networks << " random networks ran it, ";
    if (g->context.empty()) {
      std::cout << "too few to fit (isolated kernels serve)\n";
    } else {
      std::cout << "median fit error " << fixed(100 * g->network_fit_error, 1) << "%\n";
    }
  }
  std::cout << args.out << "\n";
  return 0;
}

int run_predict(const DeviceArgs& args) {
  std::ifstream in(args.latency_model);
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (!in || j.is_discarded()) return fail(invalid_argument("--latency-model: '" + args.latency_model + "' is not a JSON file"));
  auto predictor = latency_predictor_from_json(j, args.latency_model);
  if (!predictor) return fail(predictor.status());
  auto card = resolve_model(args.model);
  if (!card) return fail(card.status());
  // Predicted for the graph this load of the model runs, and measured on the same load.
  LoadOptions load;
  load.threads = predictor->threads;
  auto classifier = load_classifier(*card, load);
  if (!classifier) return fail(classifier.status());
  const InferenceGraph graph = (*classifier)->batch1_graph();
  auto predicted = predict_latency_ms(*predictor, *card, graph);
  if (!predicted) return fail(predicted.status());
  nlohmann::json out{{"model", card->name},
                     {"threads", predictor->threads},
                     {"graph", graph == InferenceGraph::kFrozen ? "frozen" : "optimized"},
                     {"predicted_ms", *predicted}};
  if (args.measure) {
    std::vector<double> medians;
    for (int r = 0; r < args.rounds; ++r) {
      auto stats = measure_latency(**classifier, 1, 3, 20);
      if (!stats) return fail(stats.status());
      medians.push_back(stats->median_ms);
    }
    const double measured = median_of(medians);
    out["measured_ms"] = measured;
    out["error"] = (*predicted - measured) / measured;
  }
  if (args.json) {
    std::cout << out.dump() << "\n";
  } else {
    std::cout << card->name << ": predicted " << fixed(*predicted, 3) << " ms";
    if (args.measure) std::cout << ", measured " << fixed(out["measured_ms"].get<double>(), 3) << " ms (" << fixed(100 * out["error"].get<double>(), 1) << "%)";
    std::cout << " at " << predictor->threads << " threads, " << out["graph"].get<std::string>() << " graph\n";
  }
  return 0;
}

}  // namespace

Runner add_device_command(CLI::App& app) {
  auto args = std::make_shared<DeviceArgs>();
  auto* device = app.add_subcommand("device", "This device's latency model: calibrate it, predict with it");
  device->require_subcommand(1);
  auto* calibrate = device->add_subcommand("calibrate", "Time a sweep of kernels here and fit one latency predictor per kernel type");
  calibrate->add_option("--out", args->out, "Where to write the latency model (JSON)")->required();
  calibrate->add_option("--profile", args->profile, "A device profile to copy into --out with the latency_model section added");
  calibrate->add_option("--threads", args->calibration.threads, "Inference threads of the device")->check(CLI::PositiveNumber)->capture_default_str();
  calibrate->add_option("--kernels", args->calibration.kernels_per_type, "Kernels timed per type (convs: 4x)")
      ->check(CLI::Range(4, 10000))
      ->capture_default_str();
  calibrate->add_option("--networks", args->calibration.networks, "Random whole networks timed to fit the kernels in context (0 = none)")
      ->check(CLI::Range(0, 10000))
      ->capture_default_str();
  auto* predict = device->add_subcommand("predict", "A model's batch-1 latency predicted by a latency model (and measured)");
  predict->add_option("--latency-model", args->latency_model, "A file written by device calibrate")->required();
  predict->add_option("--model", args->model, "Zoo name, card (.json) or model file (.pt) with its card beside it")->required();
  predict->add_flag("--measure", args->measure, "Also measure it here, at the latency model's threads");
  predict->add_option("--rounds", args->rounds, "--measure: rounds of 20 timed runs (median)")->check(CLI::PositiveNumber)->capture_default_str();
  predict->add_flag("--json", args->json, "Print one JSON object");
  return [args, calibrate, predict] {
    if (calibrate->parsed()) return run_calibrate(*args);
    return run_predict(*args);
  };
}

}  // namespace edgefleet::cli
