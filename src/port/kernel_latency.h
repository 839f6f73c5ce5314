// Internal: a device's latency model applied to a list of kernels — a model's, or a pruning
// candidate's before it is built (ChannelGraph::kernels at its widths) — and the in-context
// fit of its calibration (here so it can be tested without timing anything).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "edgefleet/latency_predictor.h"
#include "edgefleet/status.h"
#include "port/channel_graph.h"

namespace edgefleet {

// A model's kernels summed per type: the isolated predictors' ms (less the call each timing
// included) and the kernel count.
struct TypeSums {
  std::map<std::string, double> predicted_ms;
  std::map<std::string, int> count;
};

// A random network of the calibration: its kernels' sums and its measured ms.
struct NetworkSample {
  TypeSums sums;
  double ms = 0.0;
};

// Fits `graph`'s context to the networks that ran it: [scale, ms per kernel] per type and a
// per-call ms, all >= 0, so that the networks' sums match their measured ms (least squares on
// relative error, a ridge pulling each scale to 1 and each per-kernel ms to 0: a type few
// networks use stays near its isolated predictor; its strength chosen by 5-fold cross-validation
// on the networks, GraphLatency::context_ridge). With fewer than two networks per unknown, one
// scale for every type and a per-call ms.
void fit_context(GraphLatency& graph, const std::vector<NetworkSample>& networks);

// The ms `graph` predicts from a model's sums: in context when it has one, else the isolated sum.
double predict_from_sums(const GraphLatency& graph, const TypeSums& sums);

// Batch-1 ms on `graph`. Fails with invalid_argument for a kernel type the latency model lacks.
Expected<double> predicted_kernels_ms(const LatencyPredictor& predictor, const std::vector<KernelUse>& kernels, InferenceGraph graph);

}  // namespace edgefleet
