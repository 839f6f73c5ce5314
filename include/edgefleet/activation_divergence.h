// Where inside the model two inputs part: the layer-by-layer comparison of their activations
// (as Polygraphy compares two engines layer by layer, here one model on two inputs — what the
// pipelines in front of it made of the same photo).
//
// The TorchScript model's forward graph is inlined and run once per input in FP32, keeping the
// output of every layer a user would name (convolutions, linear layers, additions,
// concatenations, poolings, means); each is compared by cosine similarity and relative error
// ||a - b|| / ||a||. A layer is named by its module path when the graph kept it
// ("features.3.conv.0: conv2d").
//
//   auto d = compare_activations(card, input_a, input_b).value();
//   if (d.parted_at >= 0) std::cout << d.layers[d.parted_at].layer;
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "edgefleet/model_card.h"
#include "edgefleet/status.h"

namespace edgefleet {

struct LayerDivergence {
  std::string layer;  // "features.3.conv.0: conv2d"; the model input is "input"
  std::vector<std::int64_t> shape;
  double cosine = 1.0;
  double relative_error = 0.0;
};

struct ActivationDivergence {
  std::vector<LayerDivergence> layers;  // the input first, then in graph order, the logits last
  double min_cosine = 0.99;             // the threshold parted_at used
  int parted_at = -1;                   // the first layer whose cosine falls below it; -1 none
};

// `a` and `b`: one model input each (the card's CHW size). Fails with unsupported for a
// non-TorchScript card, invalid_argument for inputs of the wrong size.
Expected<ActivationDivergence> compare_activations(const ModelCard& card, const std::vector<float>& a, const std::vector<float>& b,
                                                   double min_cosine = 0.99);

nlohmann::json activation_divergence_to_json(const ActivationDivergence& divergence);

}  // namespace edgefleet
