// ArchSpec: a built-in classifier architecture as data (layers and their channel widths),
// and ChannelGroup: the sets of tensor slices that must be pruned together.
// The zoo builds TorchScript modules from an ArchSpec; porting changes widths and rebuilds.
// Value types; thread-safe to share read-only.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "edgefleet/status.h"

namespace edgefleet {

enum class LayerKind {
  kConv,              // conv + batch norm + activation; depthwise when `depthwise`
  kInvertedResidual,  // MobileNetV2: 1x1 expand, 3x3 depthwise, 1x1 project (+ identity add)
  kBasicResidual,     // ResNet: two 3x3 convs (+ identity or 1x1 projection shortcut)
  kMaxPool,
};

struct LayerSpec {
  LayerKind kind = LayerKind::kConv;
  int out = 0;        // output channels (conv, residual blocks)
  int expand = 0;     // hidden channels of an inverted residual; 0 = no expansion conv
  int mid = 0;        // a basic residual's inner width (its first conv); 0 = `out`
  int kernel = 3;     // conv / pool window
  int stride = 1;
  bool depthwise = false;
  std::string activation = "relu";  // relu | relu6 | leaky | none
  bool ceil_mode = false;           // max pool output size rounding
  // Convs: "symmetric" pads kernel/2 on every side; "same" pads as TensorFlow's SAME does
  // (output = ceil(input / stride), the odd pixel at the bottom and right), as Keras-trained
  // models expect. "same" is computed for `input_size` only.
  std::string padding = "symmetric";
  // Residual blocks: whether the shortcut is the identity. -1 = decided by shape (stride 1 and
  // out == input channels); pruning fixes it so that changed widths cannot change the graph.
  int identity = -1;
};

struct ArchSpec {
  std::string family;  // cnn | mobilenetv2 | resnet
  int in_channels = 1;
  int input_size = 28;
  int classes = 10;
  float mean = 0.0f;  // normalisation applied inside the model: (x - mean) / std
  float std = 1.0f;
  std::vector<LayerSpec> layers;
  int embedding = 0;  // >0: a dense layer of this width before the classifier
  double bn_eps = 1e-5;        // batch-norm epsilon (Keras models use 1e-3)
  double leaky_slope = 0.1;    // of the "leaky" activation
};

// One tensor dimension that belongs to a channel group.
struct TensorSlice {
  std::string tensor;  // parameter or buffer name in the built module
  int dim = 0;
};

// Channels that must be kept or removed together (conv outputs tied by residual adds,
// depthwise convs, batch norms and the consumers' input dimension).
struct ChannelGroup {
  std::string name;
  int channels = 0;
  bool prunable = true;  // false for the model input
  std::vector<TensorSlice> members;
};

void to_json(nlohmann::json& j, const ArchSpec& spec);
// Parses and validates; fails with invalid_argument naming the bad field.
Expected<ArchSpec> arch_spec_from_json(const nlohmann::json& j);

// The channel groups of `spec`, derived from its structure (no weights needed).
std::vector<ChannelGroup> channel_groups(const ArchSpec& spec);

}  // namespace edgefleet
