// A latency model measured on the device itself (nn-Meter's approach, simplified): time a sweep
// of kernels (conv+bn+activation k x k at strides 1 and 2, depthwise, linear, add, concat,
// pooling, padding, activations) through libtorch's optimised frozen graph at the device's
// thread count, fit one predictor per kernel type (weighted least squares on MACs, elements
// read and written, and weights, minimising relative error), and predict a model's batch-1
// latency as the sum of its kernels' (read from its TorchScript graph), less the per-call
// overhead every kernel's measurement counted once.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "edgefleet/model_card.h"
#include "edgefleet/status.h"

namespace edgefleet {

struct LatencyPredictor {
  int threads = 1;
  double call_overhead_ms = 0.0;  // one forward call of a near-empty model
  // Per kernel type, the coefficients of [1, MMACs, M elements read + written, M weights].
  std::map<std::string, std::vector<double>> coefficients;
  // Per kernel type: samples timed, and the fit's median relative error on them.
  std::map<std::string, int> samples;
  std::map<std::string, double> fit_error;
};

struct CalibrationOptions {
  int threads = 1;
  int kernels_per_type = 24;  // convs get twice as many
  std::uint64_t seed = 1;
};

// Times the kernel sweep on this machine (a few minutes). Progress lines go to `progress`.
Expected<LatencyPredictor> calibrate_latency(const CalibrationOptions& options,
                                             const std::function<void(const std::string&)>& progress = {});

nlohmann::json latency_predictor_to_json(const LatencyPredictor& predictor);
Expected<LatencyPredictor> latency_predictor_from_json(const nlohmann::json& j, const std::string& origin);

// The predicted batch-1 latency of the card's TorchScript model. Fails with unsupported for an
// operation its graph analysis does not know.
Expected<double> predict_latency_ms(const LatencyPredictor& predictor, const ModelCard& card);

}  // namespace edgefleet
