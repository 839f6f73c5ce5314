// Internal: structured channel pruning with physical removal. A zoo model (ArchSpec + its
// TorchScript module) loses whole channels of its channel groups; the result is a smaller
// dense model built from a narrower spec, with the surviving weights copied in.
#pragma once

#include <torch/script.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "edgefleet/arch_cost.h"
#include "edgefleet/architecture.h"
#include "edgefleet/status.h"
#include "port/channel_graph.h"

namespace edgefleet {

// A model with channel groups: a zoo model (its ArchSpec: the fast path, every executor) or
// any TorchScript classifier read through its graph (`graph` set, `spec` unused; `module` is
// the graph's analysed copy).
struct PrunableModel {
  ArchSpec spec;
  torch::jit::Module module;
  std::shared_ptr<const ChannelGraph> graph;
};

// A TorchScript classifier without an ArchSpec, read through its graph for one NCHW input.
// `probe`: model inputs the channel means are measured on (see ChannelGraph::analyse).
Expected<PrunableModel> graph_model(const torch::jit::Module& module, const std::vector<std::int64_t>& input_shape,
                                    const torch::Tensor& probe = torch::Tensor());

// Group widths of `spec` by group name (prunable groups only).
std::map<std::string, int> group_widths(const ArchSpec& spec);
std::map<std::string, int> group_widths(const PrunableModel& model);

// The cost of `model` with the named groups at the given widths (others whole).
ArchCost cost_at(const PrunableModel& model, const std::map<std::string, int>& widths);

// The kernels (what a latency model prices) of `model` with the named groups at `widths`.
std::vector<KernelUse> kernels_at(const PrunableModel& model, const std::map<std::string, int>& widths);

// Per prunable group, its batch norms' scales (the module's own tensors, channel order).
std::map<std::string, std::vector<torch::Tensor>> batch_norm_scales(const PrunableModel& model);

// `spec` with its residual shortcuts fixed (identity or projection, as the shapes decide now)
// and the named groups' widths replaced. Unnamed groups keep their width.
Expected<ArchSpec> spec_with_widths(const ArchSpec& spec, const std::map<std::string, int>& widths);

// Keeps, per named group, the listed channels (ascending, distinct, at least one); other
// groups are kept whole. A removed channel's mean output is folded into its consumers
// (see compensate_removed in the source) where a plain conv layer writes the group. Fails with invalid_argument for unknown groups or bad indices.
Expected<PrunableModel> prune_channels(const PrunableModel& model, const std::map<std::string, std::vector<std::int64_t>>& keep);

// A deep copy (weights not shared), for executors that keep a model while training another.
PrunableModel clone_model(const PrunableModel& model);

// Per group, each channel's importance by the L1 norm of the filters writing it (every
// conv or linear weight of the group along dim 0), summed over the group's writers.
std::map<std::string, torch::Tensor> filter_l1_norms(const PrunableModel& model);

// Per group, each channel's saliency for networks with batch norm: the spread of its output
// (|gamma| * sqrt(var / (var + eps)) of the batch norms writing it: the largest over writers
// joined by an addition, the smallest along a depthwise chain). Filter norms mislead there:
// batch norm rescales every filter, so a tiny filter can carry a large signal.
std::map<std::string, torch::Tensor> channel_saliency(const PrunableModel& model);

// `width` rounded to the nearest multiple of `multiple` (up when `up`), within [1, full]:
// never below min(multiple, full).
int rounded_width(double width, int full, int multiple, bool up = false);

// The `width` channels of highest `score`, ascending.
std::vector<std::int64_t> top_channels(const torch::Tensor& score, int width);
// Per group of `widths`, its channels of highest score (`score` by group name), as above.
std::map<std::string, std::vector<std::int64_t>> top_channels(const std::map<std::string, torch::Tensor>& score,
                                                              const std::map<std::string, int>& widths);

}  // namespace edgefleet
