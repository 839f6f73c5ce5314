#include "edgefleet/stability_explain.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "edgefleet/inference_setting.h"
#include "edgefleet/pipeline.h"

namespace edgefleet {
namespace {

// One step of the alignment of two pipelines.
struct Edit {
  enum Kind { kSame, kSubstitute, kRemove, kInsert } kind;
  int a = -1, b = -1;  // stage indices in the first and second pipeline
};

// Longest common subsequence of stage kinds, then each pair of one kind is kept or
// substituted, and the unmatched stages are removals and insertions.
std::vector<Edit> align(const Pipeline& a, const Pipeline& b) {
  const std::size_t n = a.stages.size(), m = b.stages.size();
  std::vector<std::vector<int>> lcs(n + 1, std::vector<int>(m + 1, 0));
  for (std::size_t i = n; i-- > 0;) {
    for (std::size_t j = m; j-- > 0;) {
      lcs[i][j] = a.stages[i].index() == b.stages[j].index() ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  std::vector<Edit> edits;
  std::size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a.stages[i].index() == b.stages[j].index() && lcs[i][j] == lcs[i + 1][j + 1] + 1) {
      const bool same = stage_to_string(a.stages[i]) == stage_to_string(b.stages[j]);
      edits.push_back({same ? Edit::kSame : Edit::kSubstitute, static_cast<int>(i), static_cast<int>(j)});
      ++i;
      ++j;
    } else if (j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j])) {
      edits.push_back({Edit::kInsert, -1, static_cast<int>(j++)});
    } else {
      edits.push_back({Edit::kRemove, static_cast<int>(i++), -1});
    }
  }
  return edits;
}

class Search {
 public:
  Search(const StabilityEnvironment& from, const StabilityEnvironment& to) : from_(from), to_(to) {
    edits_ = align(from.environment.pipeline, to.environment.pipeline);
    for (std::size_t e = 0; e < edits_.size(); ++e) {
      const Edit& edit = edits_[e];
      const auto& sa = from.environment.pipeline.stages;
      const auto& sb = to.environment.pipeline.stages;
      switch (edit.kind) {
        case Edit::kSame: continue;
        case Edit::kSubstitute:
          changes.push_back("stage " + std::to_string(edit.a + 1) + ": " + stage_to_string(sa[edit.a]) + " -> " + stage_to_string(sb[edit.b]));
          break;
        case Edit::kRemove: changes.push_back("remove stage " + std::to_string(edit.a + 1) + ": " + stage_to_string(sa[edit.a])); break;
        case Edit::kInsert: changes.push_back("insert " + stage_to_string(sb[edit.b])); break;
      }
      change_of_edit_[static_cast<int>(e)] = static_cast<int>(changes.size()) - 1;
    }
    if (!(from.environment.inference == to.environment.inference)) {
      const std::string a = inference_setting_to_string(from.environment.inference);
      const std::string b = inference_setting_to_string(to.environment.inference);
      changes.push_back("infer: " + (a.empty() ? "default" : a) + " -> " + (b.empty() ? "default" : b));
      setting_change_ = static_cast<int>(changes.size()) - 1;
    }
  }

  // The first environment with the changes in `applied` made.
  StabilityEnvironment hybrid(const std::vector<int>& applied) const {
    auto on = [&](int change) { return std::find(applied.begin(), applied.end(), change) != applied.end(); };
    StabilityEnvironment h;
    h.name = "hybrid";
    h.environment.inference = setting_change_ >= 0 && on(setting_change_) ? to_.environment.inference : from_.environment.inference;
    const auto& sa = from_.environment.pipeline.stages;
    const auto& sb = to_.environment.pipeline.stages;
    for (std::size_t e = 0; e < edits_.size(); ++e) {
      const Edit& edit = edits_[e];
      const auto change = change_of_edit_.find(static_cast<int>(e));
      const bool applied_here = change != change_of_edit_.end() && on(change->second);
      switch (edit.kind) {
        case Edit::kSame: h.environment.pipeline.stages.push_back(sa[edit.a]); break;
        case Edit::kSubstitute: h.environment.pipeline.stages.push_back(applied_here ? sb[edit.b] : sa[edit.a]); break;
        case Edit::kRemove: if (!applied_here) h.environment.pipeline.stages.push_back(sa[edit.a]); break;
        case Edit::kInsert: if (applied_here) h.environment.pipeline.stages.push_back(sb[edit.b]); break;
      }
    }
    return h;
  }

  std::vector<std::string> changes;

 private:
  const StabilityEnvironment& from_;
  const StabilityEnvironment& to_;
  std::vector<Edit> edits_;
  std::map<int, int> change_of_edit_;  // edit index -> the change it is
  int setting_change_ = -1;
};

}  // namespace

Expected<Explanation> explain_flip(const ModelCard& card, const Dataset& data, std::size_t index,
                                   const StabilityEnvironment& from, const StabilityEnvironment& to,
                                   const std::vector<float>& calibration) {
  if (index >= data.size()) return invalid_argument("input " + std::to_string(index) + " is not in the dataset");
  auto classifiers = load_setting_classifiers(card, {from, to}, calibration, 1);
  if (!classifiers) return classifiers.status();
  Search search(from, to);
  Explanation out;
  out.input = data.item_name(index);
  out.from = from.name;
  out.to = to.name;
  out.changes = search.changes;

  std::map<std::vector<int>, ExplainCandidate> tried;
  std::map<std::vector<int>, std::vector<float>> model_inputs;  // of the first and last candidate
  const auto evaluate = [&](std::vector<int> applied) -> const ExplainCandidate& {
    std::sort(applied.begin(), applied.end());
    if (auto it = tried.find(applied); it != tried.end()) return it->second;
    ExplainCandidate c;
    c.applied = applied;
    const StabilityEnvironment env = search.hybrid(applied);
    c.spec = environment_spec(env);
    auto inputs = environment_inputs(card.input, data, {index}, {env}, 1);
    if (!inputs) {
      c.error = inputs.status().message();
    } else if (inputs->tensors[0][0].empty()) {
      c.error = inputs->errors[0][0];
    } else {
      if (applied.empty() || applied.size() == out.changes.size()) model_inputs[applied] = inputs->tensors[0][0];
      auto logits = classifier_for(*classifiers, env.environment.inference, 1).infer(inputs->tensors[0][0].data(), 1);
      if (!logits) {
        c.error = logits.status().message();
      } else {
        const auto best = std::max_element(logits->begin(), logits->end());
        c.top1 = static_cast<int>(best - logits->begin());
        double sum = 0.0;
        for (float v : *logits) sum += std::exp(static_cast<double>(v - *best));
        c.probability = static_cast<float>(1.0 / sum);
      }
    }
    out.evaluated.push_back(c);
    return tried.emplace(applied, std::move(c)).first->second;
  };

  std::vector<int> all(out.changes.size());
  for (std::size_t c = 0; c < all.size(); ++c) all[c] = static_cast<int>(c);
  const ExplainCandidate& start = evaluate({});
  const ExplainCandidate& end = evaluate(all);
  if (start.top1 < 0) return invalid_argument("environment '" + from.name + "' fails on " + out.input + ": " + start.error);
  if (end.top1 < 0) return invalid_argument("environment '" + to.name + "' fails on " + out.input + ": " + end.error);
  out.from_top1 = start.top1;
  out.to_top1 = end.top1;
  if (start.top1 == end.top1) {
    return invalid_argument("'" + from.name + "' and '" + to.name + "' agree on " + out.input + " (class " +
                            std::to_string(start.top1) + "): nothing to explain");
  }
  const auto flips = [&](const std::vector<int>& applied) {
    const ExplainCandidate& c = evaluate(applied);
    return c.top1 >= 0 && c.top1 != start.top1;
  };
  // ddmin: split the set into n parts; keep a part, or a complement, that still flips.
  std::vector<int> current = all;
  std::size_t n = 2;
  while (current.size() > 1) {
    const std::size_t parts = std::min(n, current.size());
    std::vector<std::vector<int>> subsets(parts);
    for (std::size_t k = 0; k < current.size(); ++k) subsets[k * parts / current.size()].push_back(current[k]);
    bool reduced = false;
    for (const auto& subset : subsets) {
      if (flips(subset)) {
        current = subset;
        n = 2;
        reduced = true;
        break;
      }
    }
    if (!reduced && parts > 2) {
      for (const auto& subset : subsets) {
        std::vector<int> complement;
        for (int c : current) {
          if (std::find(subset.begin(), subset.end(), c) == subset.end()) complement.push_back(c);
        }
        if (flips(complement)) {
          current = complement;
          n = std::max<std::size_t>(parts - 1, 2);
          reduced = true;
          break;
        }
      }
    }
    if (reduced) continue;
    if (parts >= current.size()) break;
    n = std::min(current.size(), parts * 2);
  }
  out.culprit = current;
  auto activations = compare_activations(card, model_inputs.at({}), model_inputs.at(all));
  if (activations) {
    out.activations = std::move(*activations);
  } else {
    out.activations_error = activations.status().message();
  }
  return out;
}

nlohmann::json explanation_to_json(const Explanation& e) {
  nlohmann::json evaluated = nlohmann::json::array();
  for (const auto& c : e.evaluated) {
    nlohmann::json j{{"applied", c.applied}, {"spec", c.spec}, {"top1", c.top1}, {"probability", c.probability}};
    if (!c.error.empty()) j["error"] = c.error;
    evaluated.push_back(std::move(j));
  }
  std::vector<std::string> culprit;
  for (int c : e.culprit) culprit.push_back(e.changes[static_cast<std::size_t>(c)]);
  nlohmann::json j{{"input", e.input},     {"from", e.from},       {"to", e.to},         {"from_top1", e.from_top1},
                   {"to_top1", e.to_top1}, {"changes", e.changes}, {"culprit", culprit}, {"evaluated", evaluated}};
  if (e.activations_error.empty()) {
    j["activations"] = activation_divergence_to_json(e.activations);
  } else {
    j["activations_error"] = e.activations_error;
  }
  return j;
}

}  // namespace edgefleet
