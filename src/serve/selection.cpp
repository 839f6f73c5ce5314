#include "edgefleet/selection.h"

#include <algorithm>
#include <cmath>
#include <functional>

namespace edgefleet {
namespace {

int fastest(const std::vector<VariantProfile>& zoo) {
  int best = 0;
  for (int i = 1; i < static_cast<int>(zoo.size()); ++i) {
    if (zoo[i].mean_ms < zoo[best].mean_ms) best = i;
  }
  return best;
}

// The most accurate of `candidates` (ties: the faster one, then the lower index).
int most_accurate(const std::vector<VariantProfile>& zoo, const std::vector<int>& candidates) {
  int best = candidates.front();
  for (int i : candidates) {
    if (zoo[i].accuracy > zoo[best].accuracy ||
        (zoo[i].accuracy == zoo[best].accuracy && zoo[i].mean_ms < zoo[best].mean_ms)) {
      best = i;
    }
  }
  return best;
}

std::vector<int> all_indices(const std::vector<VariantProfile>& zoo) {
  std::vector<int> all(zoo.size());
  for (std::size_t i = 0; i < zoo.size(); ++i) all[i] = static_cast<int>(i);
  return all;
}

int uniform_pick(const std::vector<int>& candidates, Rng& rng) {
  std::uniform_int_distribution<std::size_t> pick(0, candidates.size() - 1);
  return candidates[pick(rng)];
}

// A policy from a function; all seven are small enough for that.
class FunctionPolicy final : public SelectionPolicy {
 public:
  using Fn = std::function<Selection(const std::vector<VariantProfile>&, const SelectionRequest&, Rng&)>;
  FunctionPolicy(std::string name, Fn fn) : name_(std::move(name)), fn_(std::move(fn)) {}
  std::string name() const override { return name_; }
  Selection select(const std::vector<VariantProfile>& zoo, const SelectionRequest& request, Rng& rng) const override {
    Selection s = fn_(zoo, request, rng);
    s.fits_budget = fits_budget(zoo[s.variant], request.budget_ms());
    return s;
  }

 private:
  std::string name_;
  Fn fn_;
};

Selection mdinference(const std::vector<VariantProfile>& zoo, const SelectionRequest& request, Rng& rng) {
  const double budget_ms = request.budget_ms();
  Selection s;
  s.base = base_variant(zoo, budget_ms);
  s.exploration = exploration_set(zoo, s.base);
  std::vector<double> weights;
  double total = 0.0;
  for (int i : s.exploration) {
    weights.push_back(utility(zoo[i], budget_ms));
    total += weights.back();
  }
  if (total <= 0.0) {
    s.variant = s.base;  // nothing in M_E is expected to fit: keep the base model
    return s;
  }
  std::discrete_distribution<std::size_t> pick(weights.begin(), weights.end());
  s.variant = s.exploration[pick(rng)];
  return s;
}

}  // namespace

bool fits_budget(const VariantProfile& variant, double budget_ms) { return variant.mean_ms + variant.std_ms < budget_ms; }

Selection choose_variant(const SelectionPolicy& policy, const std::vector<VariantProfile>& zoo, const SelectionRequest& request,
                         Rng& rng) {
  if (zoo.size() > 1 && request.sla_ms > 0) return policy.select(zoo, request, rng);
  Selection s;
  if (request.sla_ms <= 0) {
    s.variant = most_accurate(zoo, all_indices(zoo));
    s.fits_budget = true;
  } else {
    s.variant = 0;
    s.fits_budget = fits_budget(zoo[0], request.budget_ms());
  }
  return s;
}

int base_variant(const std::vector<VariantProfile>& zoo, double budget_ms) {
  std::vector<int> fitting;
  for (int i = 0; i < static_cast<int>(zoo.size()); ++i) {
    if (fits_budget(zoo[i], budget_ms)) fitting.push_back(i);
  }
  return fitting.empty() ? fastest(zoo) : most_accurate(zoo, fitting);
}

std::vector<int> exploration_set(const std::vector<VariantProfile>& zoo, int base) {
  const double low = zoo[base].mean_ms - zoo[base].std_ms;
  const double high = zoo[base].mean_ms + zoo[base].std_ms;
  std::vector<int> set;
  for (int i = 0; i < static_cast<int>(zoo.size()); ++i) {
    if (zoo[i].mean_ms >= low && zoo[i].mean_ms <= high) set.push_back(i);
  }
  return set;
}

double utility(const VariantProfile& variant, double budget_ms) {
  const double slack = budget_ms - (variant.mean_ms + variant.std_ms);
  const double distance = std::abs(budget_ms - variant.mean_ms);
  if (slack <= 0.0 || distance == 0.0) return 0.0;
  return variant.accuracy * slack / distance;
}

const std::vector<std::string>& policy_names() {
  static const std::vector<std::string> names = {"mdinference",    "static-greedy", "static-accuracy", "static-latency",
                                                 "random",         "related-random", "related-accurate"};
  return names;
}

Expected<std::unique_ptr<SelectionPolicy>> make_policy(const std::string& name) {
  using Zoo = std::vector<VariantProfile>;
  FunctionPolicy::Fn fn;
  if (name == "mdinference") {
    fn = mdinference;
  } else if (name == "static-greedy") {
    // Stage one against the SLA alone: it does not subtract the network time.
    fn = [](const Zoo& zoo, const SelectionRequest& request, Rng&) {
      Selection s;
      s.variant = s.base = base_variant(zoo, request.sla_ms);
      return s;
    };
  } else if (name == "static-accuracy") {
    fn = [](const Zoo& zoo, const SelectionRequest&, Rng&) {
      Selection s;
      s.variant = most_accurate(zoo, all_indices(zoo));
      return s;
    };
  } else if (name == "static-latency") {
    fn = [](const Zoo& zoo, const SelectionRequest&, Rng&) {
      Selection s;
      s.variant = fastest(zoo);
      return s;
    };
  } else if (name == "random") {
    fn = [](const Zoo& zoo, const SelectionRequest&, Rng& rng) {
      Selection s;
      s.variant = uniform_pick(all_indices(zoo), rng);
      return s;
    };
  } else if (name == "related-random" || name == "related-accurate") {
    const bool accurate = name == "related-accurate";
    fn = [accurate](const Zoo& zoo, const SelectionRequest& request, Rng& rng) {
      Selection s;
      s.base = base_variant(zoo, request.budget_ms());
      s.exploration = exploration_set(zoo, s.base);
      s.variant = accurate ? most_accurate(zoo, s.exploration) : uniform_pick(s.exploration, rng);
      return s;
    };
  } else {
    std::string list;
    for (const auto& n : policy_names()) list += (list.empty() ? "" : ", ") + n;
    return invalid_argument("policy '" + name + "' is not one of " + list);
  }
  return std::unique_ptr<SelectionPolicy>(std::make_unique<FunctionPolicy>(name, std::move(fn)));
}

}  // namespace edgefleet
