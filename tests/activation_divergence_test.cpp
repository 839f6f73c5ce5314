// Where two inputs part inside a model, with known answers: a difference in a channel the
// first convolution ignores never parts them; the same difference in a channel it reads parts
// them at that convolution, named by its module path.
#include "edgefleet/activation_divergence.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "scripted_nets.h"
#include "test_support.h"

namespace edgefleet {
namespace {

// stem (a submodule: conv 3->4, reading `read_channel` only) -> relu -> mean -> linear.
Module one_channel_net(int read_channel) {
  Module stem = module("Stem");
  torch::manual_seed(1);
  auto w = torch::randn({4, 3, 3, 3});
  for (int c = 0; c < 3; ++c) {
    if (c != read_channel) w.select(1, c).zero_();
  }
  stem.register_parameter("weight", w, false);
  stem.define("def forward(self, x):\n  return torch.conv2d(x, self.weight, None, [1, 1], [1, 1], [1, 1], 1)\n");
  Module m = module("OneChannelNet");
  m.register_module("stem", stem);
  m.register_parameter("fc_w", torch::randn({3, 4}), false);
  m.define(R"(
def forward(self, x):
  return torch.linear(torch.mean(torch.relu(self.stem.forward(x)), [2, 3]), self.fc_w, None)
)");
  return m;
}

// Two inputs equal but in channel 2, which differs strongly.
std::pair<std::vector<float>, std::vector<float>> inputs_differing_in_channel_2() {
  torch::manual_seed(3);
  auto a = torch::rand({3, 8, 8});
  auto b = a.clone();
  b[2] = torch::rand({8, 8});
  return {std::vector<float>(a.data_ptr<float>(), a.data_ptr<float>() + a.numel()),
          std::vector<float>(b.data_ptr<float>(), b.data_ptr<float>() + b.numel())};
}

TEST(ActivationDivergence, ADifferenceTheModelIgnoresNeverParts) {
  testing::TempDir dir;
  const auto [a, b] = inputs_differing_in_channel_2();
  auto d = compare_activations(save_scripted_classifier(one_channel_net(0), dir.path(), "net", 3), a, b);
  ASSERT_TRUE(d) << d.status().to_string();
  ASSERT_EQ(d->layers.size(), 4u);  // input, stem's conv, mean, linear (the logits)
  EXPECT_EQ(d->layers[0].layer, "input");
  EXPECT_LT(d->layers[0].relative_error, 1.0);
  EXPECT_GT(d->layers[0].relative_error, 0.1);
  EXPECT_EQ(d->layers[1].layer, "stem: conv2d");
  for (std::size_t i = 1; i < d->layers.size(); ++i) EXPECT_EQ(d->layers[i].relative_error, 0.0) << d->layers[i].layer;
  EXPECT_EQ(d->parted_at, 0);  // the inputs themselves are below cosine 0.99
  auto strict = compare_activations(save_scripted_classifier(one_channel_net(0), dir.path(), "net", 3), a, b, 0.5);
  ASSERT_TRUE(strict);
  EXPECT_EQ(strict->parted_at, -1);
}

TEST(ActivationDivergence, ADifferenceTheModelReadsPartsAtTheLayerThatReadsIt) {
  testing::TempDir dir;
  const auto [a, b] = inputs_differing_in_channel_2();
  auto d = compare_activations(save_scripted_classifier(one_channel_net(2), dir.path(), "net", 3), a, b, 0.5);
  ASSERT_TRUE(d) << d.status().to_string();
  ASSERT_EQ(d->layers.size(), 4u);
  EXPECT_GT(d->layers[1].relative_error, 0.1);
  EXPECT_EQ(d->layers.back().layer, "linear (logits)");
  const auto j = activation_divergence_to_json(*d);
  EXPECT_EQ(j["layers"].size(), 4u);
  if (d->parted_at >= 0) EXPECT_GE(d->parted_at, 1);  // never before the layer that reads it
}

TEST(ActivationDivergence, InputsOfTheWrongSizeAndOnnxModelsAreRefused) {
  testing::TempDir dir;
  const ModelCard card = save_scripted_classifier(one_channel_net(0), dir.path(), "net", 3);
  auto bad = compare_activations(card, std::vector<float>(5), std::vector<float>(5));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  ModelCard onnx = card;
  onnx.format = ModelFormat::kOnnx;
  auto refused = compare_activations(onnx, std::vector<float>(192), std::vector<float>(192));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.status().code(), StatusCode::kUnsupported);
}

}  // namespace
}  // namespace edgefleet
