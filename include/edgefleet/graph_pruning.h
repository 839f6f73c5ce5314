// Pruning any TorchScript classifier from its graph: the channel groups its operations couple
// (conv, depthwise/grouped conv, batch norm, residual addition, concatenation, split,
// normalisation, SE scaling, flatten into linear), a width per group, and a smaller dense
// model with the surviving channels' weights. No ArchSpec needed: a user's pretrained model
// (MobileNetV2, SqueezeNet, ...) prunes as it is. An operation the analysis does not know is
// refused by name.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "edgefleet/model_card.h"
#include "edgefleet/status.h"

namespace edgefleet {

struct GraphPruneOptions {
  double macs_fraction = 0.5;  // of the base model's MACs, in (0, 1]
  // Widths are multiples of this (or a group's full width). 16: libtorch's optimised (oneDNN)
  // graph keeps channels in blocks of 16 on AVX-512 CPUs; at widths of 8 (not 16) it gave
  // MobileNetV2 wrong logits here (libtorch 1.13), so the classifier fell back to the slower
  // frozen graph, and the pruned model was barely faster than the base.
  int channel_multiple = 16;
  // An image folder whose photos (up to probe_images, spread over it, through the card's
  // preprocessing) give the channel means a removed channel leaves in the next layer's bias.
  // Empty: uniform noise, which misjudges them for a real model.
  std::string probe_data;
  int probe_images = 32;
  // How the budget is shared among groups. Uniform: every prunable group keeps the same
  // fraction. Sensitivity (needs probe_data): each group alone is cut to 7/8 .. 1/4 of its
  // width and the change of the answers on the probe photos measured (KL divergence from the
  // base's); then groups are narrowed one measured step at a time where the step costs the
  // least change per MAC saved, until the budget is met — groups that matter keep more.
  enum class Allocation { kUniform, kSensitivity };
  Allocation allocation = Allocation::kUniform;
};

struct GraphGroupSummary {
  std::string name;
  int channels = 0;
  int kept = 0;
  bool prunable = true;
};

struct GraphPruneResult {
  std::string card_path;   // the pruned model's card (beside its .pt)
  std::int64_t base_macs = 0, macs = 0;
  std::int64_t base_params = 0, params = 0;
  double width_fraction = 1.0;  // uniform: the fraction of every prunable group kept (before rounding); sensitivity: 0
  std::vector<GraphGroupSummary> groups;
};

// Keeps, in every prunable group, the channels of highest saliency (measured on the probe
// photos when given, else batch-norm spread, else filter L1 norm) — the same fraction of every
// group (the largest that fits) or widths allocated by measured sensitivity (options.allocation) — so that
// the MACs fit `macs_fraction` of the base's, and writes OUT.pt and OUT.json (the base card with the new
// params, MACs, file and provenance; its input contract unchanged). The kept weights are the
// base's, not fine-tuned. Fails with unsupported naming an operation the analysis does not
// know, invalid_argument for a fraction below what the narrowest widths reach.
Expected<GraphPruneResult> prune_model_graph(const ModelCard& base, const GraphPruneOptions& options, const std::string& out_pt);

}  // namespace edgefleet
