// The built-in zoo definitions.
#include <cmath>

#include "edgefleet/zoo.h"

namespace edgefleet {
namespace {

// Fashion-MNIST training-set pixel statistics (x in [0,1]).
constexpr float kMean = 0.2860f;
constexpr float kStd = 0.3530f;

ArchSpec base(const std::string& family) {
  ArchSpec spec;
  spec.family = family;
  spec.in_channels = 1;
  spec.input_size = 28;
  spec.classes = 10;
  spec.mean = kMean;
  spec.std = kStd;
  return spec;
}

LayerSpec conv(int out, int stride = 1, const std::string& activation = "relu") {
  LayerSpec layer;
  layer.kind = LayerKind::kConv;
  layer.out = out;
  layer.stride = stride;
  layer.activation = activation;
  return layer;
}

LayerSpec maxpool() {
  LayerSpec layer;
  layer.kind = LayerKind::kMaxPool;
  layer.kernel = 2;
  layer.stride = 2;
  return layer;
}

LayerSpec inverted_residual(int out, int expand, int stride) {
  LayerSpec layer;
  layer.kind = LayerKind::kInvertedResidual;
  layer.out = out;
  layer.expand = expand;
  layer.stride = stride;
  return layer;
}

LayerSpec basic_residual(int out, int stride) {
  LayerSpec layer;
  layer.kind = LayerKind::kBasicResidual;
  layer.out = out;
  layer.stride = stride;
  return layer;
}

// Channels rounded to a multiple of 8, never below 90% of the request (MobileNetV2's rule).
int divisible(double channels) {
  int rounded = std::max(8, static_cast<int>(channels + 4) / 8 * 8);
  if (rounded < 0.9 * channels) rounded += 8;
  return rounded;
}

ArchSpec mobilenetv2(double width) {
  ArchSpec spec = base("mobilenetv2");
  // A stride-2 stem (28 -> 14) as ImageNet MobileNetV2 does (224 -> 112): depthwise convs at
  // full resolution would make CPU training several times slower for little accuracy.
  spec.layers.push_back(conv(divisible(32 * width), 2, "relu6"));
  // (expansion t, channels c, repeats n, first stride s), sized for 28x28 inputs.
  const int settings[][4] = {{1, 16, 1, 1}, {6, 24, 2, 1}, {6, 32, 2, 2}, {6, 64, 2, 1}};
  int in = divisible(32 * width);
  for (const auto& s : settings) {
    const int out = divisible(s[1] * width);
    for (int i = 0; i < s[2]; ++i) {
      spec.layers.push_back(inverted_residual(out, s[0] == 1 ? 0 : in * s[0], i == 0 ? s[3] : 1));
      in = out;
    }
  }
  LayerSpec last = conv(divisible(256 * std::max(1.0, width)), 1, "relu6");
  last.kernel = 1;
  spec.layers.push_back(last);
  return spec;
}

}  // namespace

std::vector<ZooEntry> builtin_zoo() {
  std::vector<ZooEntry> zoo;
  TrainRecipe recipe;
  recipe.epochs = 6;
  TrainRecipe shorter = recipe;
  shorter.epochs = 5;
  TrainRecipe longer = recipe;
  longer.epochs = 8;

  ArchSpec tiny = base("cnn");
  tiny.layers = {conv(8), maxpool(), conv(16), maxpool(), conv(32)};
  zoo.push_back({"cnn_tiny", "plain CNN 8-16-32, two max pools", tiny, recipe});

  zoo.push_back({"mobilenetv2_w035", "MobileNetV2 width 0.35, for 28x28", mobilenetv2(0.35), shorter});
  zoo.push_back({"mobilenetv2_w050", "MobileNetV2 width 0.5, for 28x28", mobilenetv2(0.5), shorter});
  zoo.push_back({"mobilenetv2_w100", "MobileNetV2 width 1.0, for 28x28", mobilenetv2(1.0), shorter});

  ArchSpec plain = base("cnn");
  plain.layers = {conv(24), conv(24), maxpool(), conv(48), conv(48), maxpool(), conv(96)};
  zoo.push_back({"cnn_plain", "plain CNN 24-24-48-48-96, two max pools", plain, recipe});

  ArchSpec resnet = base("resnet");
  resnet.layers = {conv(24), basic_residual(24, 1), basic_residual(48, 2), basic_residual(96, 2)};
  zoo.push_back({"resnet_s", "ResNet-style, three basic blocks 24-48-96", resnet, longer});
  return zoo;
}

}  // namespace edgefleet
