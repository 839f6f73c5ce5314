// Internal: a device's latency model applied to a list of kernels — a model's, or a pruning
// candidate's before it is built (ChannelGraph::kernels at its widths).
#pragma once

#include <vector>

#include "edgefleet/latency_predictor.h"
#include "edgefleet/status.h"
#include "port/channel_graph.h"

namespace edgefleet {

// Batch-1 ms on `graph`. Fails with invalid_argument for a kernel type the latency model lacks.
Expected<double> predicted_kernels_ms(const LatencyPredictor& predictor, const std::vector<KernelUse>& kernels, InferenceGraph graph);

}  // namespace edgefleet
