#include "edgefleet/instability.h"

#include <algorithm>
#include <map>
#include <numeric>

namespace edgefleet {
namespace {

bool in_top_k(const Prediction& p, int label, int k) {
  const std::size_t n = std::min<std::size_t>(k, p.classes.size());
  return std::find(p.classes.begin(), p.classes.begin() + n, label) != p.classes.begin() + n;
}

std::size_t bin_of(double confidence, int bins) {
  const int b = static_cast<int>(confidence * bins);
  return static_cast<std::size_t>(std::clamp(b, 0, bins - 1));
}

}  // namespace

Expected<InstabilityReport> measure_instability(const PredictionTable& table, const InstabilityOptions& options) {
  const std::size_t environments = table.environments.size();
  if (environments < 2) return invalid_argument("instability needs at least two environments");
  if (table.labels.size() != table.predictions.size()) {
    return invalid_argument("instability: " + std::to_string(table.labels.size()) + " labels for " +
                            std::to_string(table.predictions.size()) + " inputs");
  }
  for (std::size_t i = 0; i < table.predictions.size(); ++i) {
    if (table.predictions[i].size() != environments) {
      return invalid_argument("instability: input " + std::to_string(i) + " has " +
                              std::to_string(table.predictions[i].size()) + " predictions for " +
                              std::to_string(environments) + " environments");
    }
  }
  if (options.reference < 0 || static_cast<std::size_t>(options.reference) >= environments) {
    return invalid_argument("instability: reference environment " + std::to_string(options.reference) + " out of range");
  }
  if (options.top_k < 1) return invalid_argument("instability: top_k must be at least 1");
  if (options.histogram_bins < 1) return invalid_argument("instability: histogram_bins must be at least 1");

  InstabilityReport r;
  r.accuracy.assign(environments, 0.0);
  r.accuracy_top_k.assign(environments, 0.0);
  r.pairwise_disagreement.assign(environments, std::vector<double>(environments, 0.0));
  r.confidence_histogram_stable.assign(options.histogram_bins, 0);
  r.confidence_histogram_unstable.assign(options.histogram_bins, 0);
  std::map<int, std::pair<std::size_t, std::size_t>> per_class;  // label -> (inputs, unstable)
  std::size_t unstable = 0, unstable_k = 0, disagreeing = 0, stable_n = 0;
  double stable_confidence = 0.0, unstable_confidence = 0.0;
  std::vector<std::pair<std::size_t, std::size_t>> unstable_by_spread;  // (distinct answers, input)

  for (std::size_t i = 0; i < table.predictions.size(); ++i) {
    const auto& row = table.predictions[i];
    if (std::any_of(row.begin(), row.end(), [](const Prediction& p) { return p.empty(); })) {
      ++r.skipped;
      continue;
    }
    ++r.inputs;
    const int label = table.labels[i];
    bool any_right = false, any_wrong = false, any_right_k = false, any_wrong_k = false;
    double confidence = 0.0;
    for (std::size_t e = 0; e < environments; ++e) {
      const bool right = row[e].classes[0] == label;
      const bool right_k = in_top_k(row[e], label, options.top_k);
      (right ? any_right : any_wrong) = true;
      (right_k ? any_right_k : any_wrong_k) = true;
      r.accuracy[e] += right;
      r.accuracy_top_k[e] += right_k;
      confidence += row[e].probabilities.empty() ? 0.0 : row[e].probabilities[0];
      for (std::size_t f = e + 1; f < environments; ++f) {
        if (row[e].classes[0] != row[f].classes[0]) {
          r.pairwise_disagreement[e][f] += 1;
          r.pairwise_disagreement[f][e] += 1;
        }
      }
    }
    confidence /= environments;
    std::vector<int> answers;
    for (const auto& p : row) answers.push_back(p.classes[0]);
    std::sort(answers.begin(), answers.end());
    const std::size_t distinct = std::unique(answers.begin(), answers.end()) - answers.begin();
    disagreeing += distinct > 1;
    const bool is_unstable = any_right && any_wrong;
    unstable += is_unstable;
    unstable_k += any_right_k && any_wrong_k;
    auto& cls = per_class[label];
    cls.first++;
    cls.second += is_unstable;
    if (is_unstable) {
      unstable_confidence += confidence;
      r.confidence_histogram_unstable[bin_of(confidence, options.histogram_bins)]++;
      unstable_by_spread.emplace_back(distinct, i);
    } else {
      ++stable_n;
      stable_confidence += confidence;
      r.confidence_histogram_stable[bin_of(confidence, options.histogram_bins)]++;
    }
  }

  const double n = static_cast<double>(std::max<std::size_t>(1, r.inputs));
  r.instability = unstable / n;
  r.instability_top_k = unstable_k / n;
  r.disagreement = disagreeing / n;
  for (std::size_t e = 0; e < environments; ++e) {
    r.accuracy[e] /= n;
    r.accuracy_top_k[e] /= n;
    for (std::size_t f = 0; f < environments; ++f) r.pairwise_disagreement[e][f] /= n;
  }
  double drop_sum = 0.0;
  r.accuracy_drop_max = 0.0;
  bool first = true;
  for (std::size_t e = 0; e < environments; ++e) {
    if (static_cast<int>(e) == options.reference) continue;
    const double drop = r.accuracy[options.reference] - r.accuracy[e];
    drop_sum += drop;
    r.accuracy_drop_max = first ? drop : std::max(r.accuracy_drop_max, drop);
    first = false;
  }
  r.accuracy_drop_mean = drop_sum / static_cast<double>(environments - 1);
  for (const auto& [label, counts] : per_class) {
    r.classes.push_back(label);
    r.class_inputs.push_back(counts.first);
    r.class_instability.push_back(static_cast<double>(counts.second) / counts.first);
  }
  r.mean_confidence_stable = stable_n ? stable_confidence / stable_n : 0.0;
  r.mean_confidence_unstable = unstable ? unstable_confidence / unstable : 0.0;
  std::stable_sort(unstable_by_spread.begin(), unstable_by_spread.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (const auto& [spread, input] : unstable_by_spread) r.unstable_inputs.push_back(input);
  return r;
}

}  // namespace edgefleet
