// Internal: how much each channel group of a graph-read model matters, measured on probe
// photos (Li et al., "Pruning Filters for Efficient ConvNets", 2017: sensitivity analysis),
// and the width allocation it steers — narrow first where that changes the answers least per
// MAC saved. Used by `edgefleet prune --allocation sensitivity` and port's `sensitivity`
// algorithm.
#pragma once

#include <torch/script.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "port/channel_graph.h"

namespace edgefleet {

// One group's measured curve: widths from full to narrower, and the answer change at each
// (mean KL divergence of the softmax from the unpruned model's on the probe inputs, with only
// this group cut; made non-decreasing as the group narrows; 0 at full width).
struct GroupSensitivity {
  std::vector<int> widths;
  std::vector<double> loss;
};
using ChannelSensitivity = std::map<std::string, GroupSensitivity>;

// Cuts each prunable group alone to 7/8, 3/4, 5/8, 1/2, 3/8 and 1/4 of its width (rounded to
// `multiple`; its channels of highest `saliency` kept) and measures the answer change on
// `probe`. A group narrower than two blocks is not cut (its curve is its full width only).
ChannelSensitivity measure_sensitivity(const ChannelGraph& graph, const std::map<std::string, torch::Tensor>& saliency,
                                       const torch::Tensor& probe, int multiple);

// The curves as JSON ({group: {"widths": [...], "loss": [...]}}) and back; nullopt for JSON
// that is not such an object (curves of unequal lengths included).
nlohmann::json sensitivity_to_json(const ChannelSensitivity& sensitivity);
std::optional<ChannelSensitivity> sensitivity_from_json(const nlohmann::json& j);

// One allocation step: narrows, in `widths` (each at a width of its curve), the group whose
// next measured width costs the least answer change per MAC it saves. False when no group
// can narrow further.
bool narrow_least_sensitive(const ChannelGraph& graph, const ChannelSensitivity& sensitivity, std::map<std::string, int>& widths);

}  // namespace edgefleet
