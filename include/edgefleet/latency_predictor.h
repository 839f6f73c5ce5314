// A latency model measured on the device itself (nn-Meter's approach, simplified): time a sweep
// of kernels (conv+bn+activation k x k at strides 1 and 2, depthwise, linear, add, concat,
// pooling, padding, activations) at the device's thread count, fit one predictor per kernel
// type (weighted least squares on MACs, elements read and written, and weights, minimising
// relative error), and predict a model's batch-1 latency from its kernels (read from its
// TorchScript graph).
//
// The Classifier runs a batch of one through one of two graphs (edgefleet/classifier.h,
// InferenceGraph): libtorch's optimised graph (oneDNN layouts) or the frozen graph alone
// (tiny models, and models whose optimised graph computes wrong answers). Their kernels cost
// differently, so each graph has its own predictors, and a model is predicted on the graph its
// Classifier chose.
//
// A kernel timed alone pays what a whole model pays once or not at all (layout conversions
// into and out of oneDNN's blocked format, the call, an activation fused or not), so the
// kernels are then put in context: random whole networks of the families real models are
// built from (plain conv stacks with pooling, MobileNetV1/V2 blocks, Fire modules, residual
// blocks; 28-224 px, random widths and depths) are timed through the Classifier, and, per
// graph, one scale and one per-kernel cost per kernel type plus a per-call cost are fitted so
// that the sum over a network's kernels matches its measured latency (weighted least squares
// on relative error, ridge towards the isolated predictors). No model that is later predicted
// is used to fit.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "edgefleet/classifier.h"
#include "edgefleet/model_card.h"
#include "edgefleet/status.h"

namespace edgefleet {

// One graph's predictors.
struct GraphLatency {
  double call_overhead_ms = 0.0;  // one forward call of a near-empty model
  // Per kernel type, the coefficients of [1, MMACs, M elements read + written, M weights].
  std::map<std::string, std::vector<double>> coefficients;
  // Per kernel type: samples timed, and the fit's median relative error on them.
  std::map<std::string, int> samples;
  std::map<std::string, double> fit_error;
  // In context (empty when calibrated without networks, or when too few networks ran this
  // graph): per kernel type [scale of the isolated prediction, ms per kernel], and a per-call ms.
  std::map<std::string, std::vector<double>> context;
  double context_call_ms = 0.0;
  double context_ridge = 1.0;         // the pull towards the isolated predictors, a multiple chosen by cross-validation
  int networks = 0;                   // random networks that ran this graph, timed for the context fit
  double network_fit_error = 0.0;     // the context fit's median relative error on them
};

struct LatencyPredictor {
  int threads = 1;
  GraphLatency optimized;
  GraphLatency frozen;  // no coefficients in a latency model written before it was timed: optimized serves

  // The predictors of `graph` (kNone: the optimised graph's).
  const GraphLatency& of(InferenceGraph graph) const {
    return graph == InferenceGraph::kFrozen && !frozen.coefficients.empty() ? frozen : optimized;
  }
};

struct CalibrationOptions {
  int threads = 1;
  int kernels_per_type = 24;  // convs get twice as many
  int networks = 60;          // random whole networks for the context fit (0 = kernels alone)
  std::uint64_t seed = 1;
};

// Times the kernel sweep on this machine (a few minutes). Progress lines go to `progress`.
Expected<LatencyPredictor> calibrate_latency(const CalibrationOptions& options,
                                             const std::function<void(const std::string&)>& progress = {});

nlohmann::json latency_predictor_to_json(const LatencyPredictor& predictor);
Expected<LatencyPredictor> latency_predictor_from_json(const nlohmann::json& j, const std::string& origin);

// The predicted batch-1 latency of the card's TorchScript model on `graph`, or, by default,
// on the graph its Classifier chooses (loaded at the latency model's threads). Fails with
// unsupported for an operation its graph analysis does not know.
Expected<double> predict_latency_ms(const LatencyPredictor& predictor, const ModelCard& card,
                                    std::optional<InferenceGraph> graph = std::nullopt);

}  // namespace edgefleet
