// edgefleet prune: one pruned copy of any TorchScript classifier at a fraction of its MACs,
// from the channel groups of its graph; with --measure, batch-1 latency of base and pruned
// model measured in the same run.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/cli_common.h"
#include "core/median.h"
#include "edgefleet/classifier.h"
#include "edgefleet/graph_pruning.h"
#include "edgefleet/latency.h"

namespace edgefleet::cli {
namespace {

struct PruneArgs {
  std::string model;
  std::string out;
  GraphPruneOptions options;
  bool measure = false;
  int rounds = 5;
  int threads = 0;
  bool json = false;
};

// Median per-batch latency of each model, rounds interleaved so that both see the same machine.
struct PairLatency {
  double base_ms = 0, pruned_ms = 0;
  std::string base_engine, pruned_engine;
};

Expected<PairLatency> measure_pair(const ModelCard& base, const ModelCard& pruned, const PruneArgs& args) {
  LoadOptions load;
  load.threads = args.threads;
  auto a = load_classifier(base, load);
  if (!a) return a.status();
  auto b = load_classifier(pruned, load);
  if (!b) return b.status();
  std::vector<double> base_ms, pruned_ms;
  for (int r = 0; r < args.rounds; ++r) {
    auto x = measure_latency(**a, 1, 3, 20);
    if (!x) return x.status();
    auto y = measure_latency(**b, 1, 3, 20);
    if (!y) return y.status();
    base_ms.push_back(x->median_ms);
    pruned_ms.push_back(y->median_ms);
  }
  return PairLatency{median_of(base_ms), median_of(pruned_ms), (*a)->engine(), (*b)->engine()};
}

int run(const PruneArgs& args) {
  auto base = resolve_model(args.model);
  if (!base) return fail(base.status());
  auto result = prune_model_graph(*base, args.options, args.out);
  if (!result) return fail(result.status());
  const GraphPruneResult& r = *result;
  int prunable = 0;
  for (const auto& g : r.groups) prunable += g.prunable ? 1 : 0;
  nlohmann::json out{{"model", base->name},
                     {"pruned", r.card_path},
                     {"groups", r.groups.size()},
                     {"prunable_groups", prunable},
                     {"width_fraction", r.width_fraction},
                     {"base_macs", r.base_macs},
                     {"macs", r.macs},
                     {"base_params", r.base_params},
                     {"params", r.params}};
  nlohmann::json widths = nlohmann::json::object();
  for (const auto& g : r.groups) {
    if (g.prunable) widths[g.name] = {{"channels", g.channels}, {"kept", g.kept}};
  }
  out["widths"] = widths;
  if (args.measure) {
    auto card = read_card(r.card_path);
    if (!card) return fail(card.status());
    auto ms = measure_pair(*base, *card, args);
    if (!ms) return fail(ms.status());
    out["base_ms"] = ms->base_ms;
    out["pruned_ms"] = ms->pruned_ms;
    out["speedup"] = ms->base_ms / ms->pruned_ms;
    out["base_engine"] = ms->base_engine;
    out["pruned_engine"] = ms->pruned_engine;
  }
  if (args.json) {
    std::cout << out.dump() << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"MACs", human_count(static_cast<double>(r.base_macs)), human_count(static_cast<double>(r.macs)),
       fixed(100.0 * static_cast<double>(r.macs) / static_cast<double>(r.base_macs), 1) + "%"},
      {"params", human_count(static_cast<double>(r.base_params)), human_count(static_cast<double>(r.params)),
       fixed(100.0 * static_cast<double>(r.params) / static_cast<double>(r.base_params), 1) + "%"}};
  if (args.measure) {
    rows.push_back({"batch-1 ms", fixed(out["base_ms"].get<double>(), 2), fixed(out["pruned_ms"].get<double>(), 2),
                    fixed(out["speedup"].get<double>(), 2) + "x faster"});
  }
  const std::string shared = args.options.allocation == GraphPruneOptions::Allocation::kSensitivity
                                 ? "widths allocated by measured sensitivity"
                                 : "each kept at " + fixed(100 * r.width_fraction, 1) + "%";
  std::cout << base->name << ": " << r.groups.size() << " channel groups, " << prunable << " prunable, " << shared
            << " (rounded to multiples of " << args.options.channel_multiple << "; --json lists the widths)\n"
            << format_table({"", "base", "pruned", "pruned / base"}, rows) << r.card_path << " (not fine-tuned)\n";
  return 0;
}

}  // namespace

Runner add_prune_command(CLI::App& app) {
  auto args = std::make_shared<PruneArgs>();
  auto* prune = app.add_subcommand("prune", "Prune any TorchScript classifier to a fraction of its MACs, from its graph's channel groups");
  prune->add_option("--model", args->model, "Zoo name, card (.json) or model file (.pt) with its card beside it")->required();
  prune->add_option("--out", args->out, "The pruned model (.pt); its card is written beside it")->required();
  prune->add_option("--macs", args->options.macs_fraction, "Fraction of the base's MACs to keep, in (0, 1]")
      ->check(CLI::Range(1e-6, 1.0))
      ->capture_default_str();
  prune->add_option("--channel-multiple", args->options.channel_multiple, "Widths are multiples of this")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  prune->add_option("--allocation", args->options.allocation,
                    "uniform: every group keeps the same fraction; sensitivity: each group cut alone, its answer change "
                    "measured on --data, the budget spent where it changes the answers least")
      ->transform(CLI::CheckedTransformer(std::map<std::string, GraphPruneOptions::Allocation>{
          {"uniform", GraphPruneOptions::Allocation::kUniform}, {"sensitivity", GraphPruneOptions::Allocation::kSensitivity}}))
      ->capture_default_str();
  prune->add_flag("--measure", args->measure, "Measure batch-1 latency of base and pruned model in this run");
  prune->add_option("--data", args->options.probe_data,
                    "Photos (an image folder) on which channels are ranked and whose channel means a removed channel "
                    "leaves behind (default: noise)");
  prune->add_option("--probe-images", args->options.probe_images, "--data: photos used, spread over the folder")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  prune->add_option("--rounds", args->rounds, "--measure: interleaved rounds of 20 timed runs each")->check(CLI::PositiveNumber)->capture_default_str();
  prune->add_option("--threads", args->threads, "--measure: inference threads (0 = one per core)")->check(CLI::NonNegativeNumber);
  prune->add_flag("--json", args->json, "Print one JSON object");
  return [args] { return run(*args); };
}

}  // namespace edgefleet::cli
