#include "edgefleet/stability_summary.h"

#include <map>
#include <nlohmann/json.hpp>

#include "edgefleet/stability_axes.h"

namespace edgefleet {
namespace {

// The table restricted to some environments (columns), in the given order.
PredictionTable columns_of(const PredictionTable& table, const std::vector<std::size_t>& columns) {
  PredictionTable out;
  out.labels = table.labels;
  for (std::size_t c : columns) out.environments.push_back(table.environments[c]);
  out.predictions.resize(table.predictions.size());
  for (std::size_t i = 0; i < table.predictions.size(); ++i) {
    for (std::size_t c : columns) out.predictions[i].push_back(table.predictions[i][c]);
  }
  return out;
}

// Per source (axis): the instability among that axis's environments alone, drops measured
// from its baseline (its first environment).
Expected<nlohmann::json> per_source(const PredictionTable& table, const InstabilityOptions& options) {
  std::vector<std::string> order;
  std::map<std::string, std::vector<std::size_t>> columns;
  for (std::size_t e = 0; e < table.environments.size(); ++e) {
    const std::string source = environment_source(table.environments[e]);
    if (source.empty()) continue;
    if (!columns.count(source)) order.push_back(source);
    columns[source].push_back(e);
  }
  const std::string k = std::to_string(options.top_k);
  nlohmann::json out = nlohmann::json::array();
  for (const auto& source : order) {
    if (columns[source].size() < 2) continue;
    InstabilityOptions sub = options;
    sub.reference = 0;
    auto report = measure_instability(columns_of(table, columns[source]), sub);
    if (!report) return report.status();
    nlohmann::json environments = nlohmann::json::array();
    for (std::size_t j = 0; j < columns[source].size(); ++j) {
      environments.push_back({{"name", table.environments[columns[source][j]]}, {"accuracy", report->accuracy[j]}});
    }
    out.push_back({{"source", source},
                   {"baseline", table.environments[columns[source][0]]},
                   {"images", report->inputs},
                   {"environments", environments},
                   {"instability", report->instability},
                   {"instability_top" + k, report->instability_top_k},
                   {"disagreement", report->disagreement},
                   {"accuracy_drop", {{"mean", report->accuracy_drop_mean}, {"max", report->accuracy_drop_max}}}});
  }
  return out;
}

}  // namespace

Expected<nlohmann::json> summarize_stability(const ResultsStore& store, const InstabilityOptions& options) {
  auto table = store.table();
  if (!table) return table.status();
  auto environments = store.environments();
  if (!environments) return environments.status();
  auto inputs = store.inputs();
  if (!inputs) return inputs.status();
  auto failures = store.failures();
  if (!failures) return failures.status();
  auto report = measure_instability(*table, options);
  if (!report) return report.status();
  const std::string k = std::to_string(options.top_k);
  nlohmann::json out;
  out["images"] = report->inputs;
  out["skipped"] = report->skipped;
  out["failures"] = failures->size();
  out["environments"] = nlohmann::json::array();
  for (std::size_t e = 0; e < environments->size(); ++e) {
    out["environments"].push_back({{"name", (*environments)[e].name},
                                   {"spec", (*environments)[e].spec},
                                   {"accuracy", report->accuracy[e]},
                                   {"accuracy_top" + k, report->accuracy_top_k[e]}});
  }
  out["reference"] = (*environments)[options.reference].name;
  out["instability"] = report->instability;
  out["instability_top" + k] = report->instability_top_k;
  out["disagreement"] = report->disagreement;
  out["accuracy_drop"] = {{"mean", report->accuracy_drop_mean}, {"max", report->accuracy_drop_max}};
  out["pairwise_disagreement"] = report->pairwise_disagreement;
  auto sources = per_source(*table, options);
  if (!sources) return sources.status();
  if (!sources->empty()) out["per_source"] = std::move(*sources);
  out["per_class"] = nlohmann::json::array();
  for (std::size_t c = 0; c < report->classes.size(); ++c) {
    out["per_class"].push_back({{"class", report->classes[c]},
                                {"images", report->class_inputs[c]},
                                {"instability", report->class_instability[c]}});
  }
  out["confidence"] = {{"stable_mean", report->mean_confidence_stable},
                       {"unstable_mean", report->mean_confidence_unstable},
                       {"stable_histogram", report->confidence_histogram_stable},
                       {"unstable_histogram", report->confidence_histogram_unstable}};
  out["most_unstable"] = nlohmann::json::array();
  for (std::size_t i = 0; i < std::min<std::size_t>(20, report->unstable_inputs.size()); ++i) {
    const std::size_t input = report->unstable_inputs[i];
    nlohmann::json predictions = nlohmann::json::object();
    for (std::size_t e = 0; e < environments->size(); ++e) {
      const Prediction& p = table->predictions[input][e];
      predictions[(*environments)[e].name] = {{"class", p.classes.empty() ? -1 : p.classes[0]},
                                              {"probability", p.probabilities.empty() ? 0.0f : p.probabilities[0]}};
    }
    out["most_unstable"].push_back({{"input", (*inputs)[input].name},
                                    {"label", (*inputs)[input].label},
                                    {"predictions", predictions}});
  }
  return out;
}

}  // namespace edgefleet
