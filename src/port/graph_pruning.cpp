#include "edgefleet/graph_pruning.h"

#include <filesystem>
#include <iomanip>
#include <sstream>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "edgefleet/dataset.h"
#include "edgefleet/preprocess.h"
#include "model/torchscript_cost.h"
#include "model/torchscript_graph.h"
#include "port/channel_graph.h"
#include "port/channel_pruning.h"
#include "port/channel_sensitivity.h"

namespace edgefleet {
namespace {

std::map<std::string, int> uniform_widths(const ChannelGraph& graph, double fraction, int multiple) {
  std::map<std::string, int> widths;
  for (const auto& [name, full] : graph.widths()) widths[name] = rounded_width(fraction * full, full, multiple, /*up=*/true);
  return widths;
}

// Up to `count` photos of `folder`, spread over it, as the card's model inputs.
torch::Tensor probe_inputs(const ModelCard& card, const std::string& folder, int count) {
  auto data = open_dataset(folder).value();
  const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(std::max(count, 1)), data->size());
  std::vector<torch::Tensor> inputs;
  for (std::size_t k = 0; k < n; ++k) {
    auto image = data->load(k * data->size() / n);
    if (!image) continue;  // an unreadable photo is left out
    auto input = preprocess(*image, card.input).value();
    inputs.push_back(torch::from_blob(input.data(), {1, card.input.channels(), card.input.height, card.input.width}, torch::kFloat32).clone());
  }
  if (inputs.empty()) throw Error(invalid_argument("prune: no photo of '" + folder + "' could be read"));
  return torch::cat(inputs);
}

}  // namespace

Expected<GraphPruneResult> prune_model_graph(const ModelCard& base, const GraphPruneOptions& options, const std::string& out_pt) {
  if (!(options.macs_fraction > 0 && options.macs_fraction <= 1)) return invalid_argument("prune: the MACs fraction must be in (0, 1]");
  if (options.channel_multiple < 1) return invalid_argument("prune: the channel multiple must be at least 1");
  if (base.format != ModelFormat::kTorchScript) return unsupported("prune: " + base.name + " is not a TorchScript model");
  if (out_pt.size() < 4 || out_pt.substr(out_pt.size() - 3) != ".pt") return invalid_argument("prune: the output must be a .pt file: " + out_pt);
  return capture([&]() -> GraphPruneResult {
    torch::jit::Module module = load_torchscript_module(base, "prune");
    const std::vector<std::int64_t> input = {1, base.input.channels(), base.input.height, base.input.width};
    torch::Tensor probe;
    if (!options.probe_data.empty()) probe = probe_inputs(base, options.probe_data, options.probe_images);
    auto graph = ChannelGraph::analyse(module, input, probe);
    if (!graph) throw Error(Status(graph.status().code(), base.name + ": " + graph.status().message()));
    GraphPruneResult result;
    const ArchCost full = graph->cost();
    result.base_macs = full.macs;
    result.base_params = full.params;
    const double budget = options.macs_fraction * static_cast<double>(full.macs);
    const auto saliency = graph->saliency();
    const auto narrowest_macs = static_cast<double>(graph->cost(uniform_widths(*graph, 0.0, options.channel_multiple)).macs);
    if (narrowest_macs > budget) {
      const double narrowest = narrowest_macs / static_cast<double>(full.macs);
      std::ostringstream message;
      message << "prune: " << base.name << " cannot reach " << 100 * options.macs_fraction << "% of its MACs: its narrowest widths (multiples of "
              << options.channel_multiple << ") keep " << std::setprecision(3) << 100 * narrowest << "%";
      throw Error(invalid_argument(message.str()));
    }
    std::map<std::string, int> widths;
    if (options.allocation == GraphPruneOptions::Allocation::kSensitivity) {
      if (!probe.defined()) throw Error(invalid_argument("prune: allocating widths by sensitivity needs photos to measure it on (--data)"));
      const auto measured = measure_sensitivity(*graph, saliency, probe, options.channel_multiple);
      widths = graph->widths();
      while (static_cast<double>(graph->cost(widths).macs) > budget) {
        if (!narrow_least_sensitive(*graph, measured, widths)) {
          std::ostringstream message;
          message << "prune: " << base.name << " cannot reach " << 100 * options.macs_fraction
                  << "% of its MACs with each group cut to at most a quarter; allocate uniformly instead";
          throw Error(invalid_argument(message.str()));
        }
      }
      result.width_fraction = 0;
    } else {
      // The largest uniform fraction whose rounded widths fit the budget.
      double lo = 0.0, hi = 1.0;
      for (int step = 0; step < 40; ++step) {
        const double mid = (lo + hi) / 2;
        if (static_cast<double>(graph->cost(uniform_widths(*graph, mid, options.channel_multiple)).macs) <= budget) {
          lo = mid;
        } else {
          hi = mid;
        }
      }
      widths = uniform_widths(*graph, lo, options.channel_multiple);
      result.width_fraction = lo;
    }
    auto pruned = graph->prune(top_channels(saliency, widths));
    if (!pruned) throw Error(pruned.status());
    const ArchCost cost = graph->cost(widths);
    result.macs = cost.macs;
    result.params = cost.params;
    for (const auto& g : graph->groups()) {
      auto it = widths.find(g.name);
      result.groups.push_back({g.name, g.channels, it == widths.end() ? g.channels : it->second, g.prunable});
    }
    // The pruned module must run and its traced cost must be what the analysis predicted.
    auto traced = torchscript_cost(*pruned, input);
    if (!traced) throw Error(traced.status());
    if (traced->macs != cost.macs) {
      throw Error(internal_error("prune: the pruned model has " + std::to_string(traced->macs) + " MACs, the analysis predicted " +
                                 std::to_string(cost.macs)));
    }
    std::filesystem::create_directories(std::filesystem::absolute(out_pt).parent_path());
    replace_atomically(out_pt, [&](const std::string& tmp) { pruned->save(tmp); });
    ModelCard card = base;
    const std::string stem = std::filesystem::path(out_pt).stem().string();
    card.name = stem;
    card.file = std::filesystem::path(out_pt).filename().string();
    card.sha256.clear();
    card.params = traced->params;
    card.macs = traced->macs;
    card.accuracy.reset();
    card.raw = nlohmann::json();  // the base's other fields (verification, measurements) describe the base
    card.training = nlohmann::json();
    card.latency_ms = nlohmann::json();
    card.architecture = base.architecture + " (channel-pruned to " + std::to_string(options.macs_fraction) + " of its MACs)";
    card.provenance = {{"pruned_from", base.name},
                       {"base_provenance", base.provenance},
                       {"method", std::string("graph channel groups, ") +
                                      (options.allocation == GraphPruneOptions::Allocation::kSensitivity
                                           ? "widths allocated by measured sensitivity per MAC"
                                           : "uniform width fraction") +
                                      ", saliency-ranked channels" + (options.probe_data.empty() ? "" : " on photos") + ", not fine-tuned"},
                       {"width_fraction", result.width_fraction},
                       {"channel_multiple", options.channel_multiple}};
    const std::string card_path = (std::filesystem::path(out_pt).parent_path() / (stem + ".json")).string();
    if (auto written = write_card(card, card_path); !written.is_ok()) throw Error(written);
    result.card_path = card_path;
    return result;
  });
}

}  // namespace edgefleet
