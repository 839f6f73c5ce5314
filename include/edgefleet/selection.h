// SLA-aware model selection (papers/mdinference.md §IV-D): given the latency profile and
// accuracy of each functionally-equivalent variant and a request's time budget, pick the
// variant to run. MDInference's three-stage policy and the paper's six baselines share one
// interface. Policies are stateless and thread-safe; randomness comes from the caller.
//
//   auto policy = make_policy("mdinference").value();
//   Rng rng(42);
//   SelectionRequest request{250.0, 2 * transfer_ms};   // T_sla, T_nw
//   Selection s = policy->select(zoo, request, rng);     // run zoo[s.variant]
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "edgefleet/status.h"

namespace edgefleet {

// One variant as selection sees it: accuracy A(m) in [0,1], execution latency mu(m), sigma(m).
struct VariantProfile {
  std::string name;
  double accuracy = 0.0;
  double mean_ms = 0.0;
  double std_ms = 0.0;
};

using Rng = std::mt19937_64;

struct Selection {
  int variant = -1;               // index into the zoo
  int base = -1;                  // stage one's base model (MDInference and related policies)
  std::vector<int> exploration;   // stage two's exploration set M_E (empty for static policies)
  bool fits_budget = false;       // mu + sigma of the chosen variant < budget
};

struct SelectionRequest {
  double sla_ms = 0.0;      // T_sla: the end-to-end deadline
  double network_ms = 0.0;  // T_nw: estimated network time (default estimator: 2 x T_input)
  // T_budget = T_sla - T_nw; may be negative, and then no variant fits.
  double budget_ms() const { return sla_ms - network_ms; }
};

class SelectionPolicy {
 public:
  virtual ~SelectionPolicy() = default;
  virtual std::string name() const = 0;
  // `zoo` must be non-empty; returns the chosen index and the intermediate sets.
  virtual Selection select(const std::vector<VariantProfile>& zoo, const SelectionRequest& request, Rng& rng) const = 0;
};

// mdinference (the paper's three stages) | static-greedy (stage one against the SLA alone,
// blind to the network) | static-accuracy (most accurate) | static-latency (fastest) | random |
// related-random (uniform over M_E) | related-accurate (most accurate in M_E).
// Fails with invalid_argument naming the accepted names.
Expected<std::unique_ptr<SelectionPolicy>> make_policy(const std::string& name);
const std::vector<std::string>& policy_names();

// The serving rule around a policy, for a request that may carry no SLA or be pinned to one
// variant: without an SLA (sla_ms <= 0) the most accurate variant, fits_budget true; with one
// variant, that variant, fitting when mu + sigma < budget; otherwise `policy`'s choice.
Selection choose_variant(const SelectionPolicy& policy, const std::vector<VariantProfile>& zoo, const SelectionRequest& request,
                         Rng& rng);
// mu + sigma < budget: the one "fits" test of every policy and the server.
bool fits_budget(const VariantProfile& variant, double budget_ms);

// The stages, exposed for tests and for the server's explanations.
// Stage one: the most accurate variant with mu + sigma < budget, else the fastest.
int base_variant(const std::vector<VariantProfile>& zoo, double budget_ms);
// Stage two: every variant whose mu lies in [mu(base) - sigma(base), mu(base) + sigma(base)].
std::vector<int> exploration_set(const std::vector<VariantProfile>& zoo, int base);
// Stage three's utility U(m) = A(m) (T_budget - (mu + sigma)) / |T_budget - mu|, clamped at 0:
// a variant expected to overrun the budget gets no probability (the paper leaves negative
// utilities undefined).
double utility(const VariantProfile& variant, double budget_ms);

}  // namespace edgefleet
