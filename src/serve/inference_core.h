// Internal: the inference server without its transport (Triton's "core" beside its HTTP and
// gRPC frontends). One request in, one response or one Status out: checks the input, picks
// the variant (edgefleet/selection.h; its predicted latency includes its queue), preprocesses
// pictures per the chosen card, queues the request with its deadline on the variant's batcher
// (serve/batch_scheduler.h) and fills the response. Frontends only decode
// and encode the wire format, authenticate, and map a Status to their protocol's code.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "edgefleet/kserve.h"
#include "edgefleet/selection.h"
#include "edgefleet/status.h"
#include "serve/server_metrics.h"
#include "serve/variant_registry.h"

namespace edgefleet {

// What the server's metadata calls it (both frontends).
inline constexpr const char* kServerName = "edgefleet";
inline constexpr const char* kServerVersion = "0.1.0";

struct InferenceCoreOptions {
  std::string policy = "mdinference";  // the default selection policy; a request may name another
  double default_sla_ms = 0.0;          // for requests without parameters.sla_ms; 0 = no deadline
  std::size_t max_image_pixels = 50'000'000;
  std::size_t decode_budget_bytes = 1u << 30;  // memory for pictures being decoded at once
  std::uint64_t seed = 1;                      // of the selection policies' randomness
};

// Where a request is addressed and what the transport measured of it.
struct InferTarget {
  std::string model;    // a task (the server picks the variant) or a variant name
  std::string version;  // "" or a variant of the task (pinned)
  double receive_ms = 0.0;  // time the request took to arrive; the network estimate without transfer_ms
};

class DecodeBudget;

class InferenceCore {
 public:
  // Fails on an unknown policy or an option out of range.
  static Expected<std::unique_ptr<InferenceCore>> create(InferenceCoreOptions options, const VariantRegistry& registry,
                                                         ServerMetrics& metrics);
  ~InferenceCore();

  // Errors: invalid_argument (the request does not fit the model), not_found (no such model
  // or version), unavailable (the variant's queue or the decode memory is full; retry),
  // deadline_exceeded (its budget, sla_ms less the network time, ran out while it was queued;
  // it never reached a model). A request whose budget cannot cover an immediate run gets the selection
  // policy's fallback and runs.
  // The response's parameters say which variant ran, why, and where the time went.
  Expected<InferResponse> infer(InferRequest request, const InferTarget& target);

  // KServe v2 model metadata of a task or variant; not_found otherwise.
  Expected<nlohmann::json> metadata(const std::string& model, const std::string& version) const;
  // Whether the task or variant (and the version, when given) is loaded.
  bool ready(const std::string& model, const std::string& version) const;

  // Counted under a loaded task or variant name, else "": metric labels never come from requests.
  std::string metric_label(const std::string& model) const;

 private:
  InferenceCore(InferenceCoreOptions options, const VariantRegistry& registry, ServerMetrics& metrics);

  InferenceCoreOptions options_;
  const VariantRegistry& registry_;
  ServerMetrics& metrics_;
  std::unique_ptr<DecodeBudget> decode_budget_;
  std::map<std::string, std::unique_ptr<SelectionPolicy>> policies_;  // every policy, by name
  const SelectionPolicy* default_policy_ = nullptr;
  std::atomic<std::uint64_t> rng_counter_{0};
};

}  // namespace edgefleet
