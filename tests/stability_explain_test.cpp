// Why an input flipped: a hand-built case with a known answer. Two pipelines differ in two
// stages: the decoder (libpng vs OpenCV: bit-identical pixels, cannot flip anything) and a
// resize that crushes the picture to 7x7 (flips many answers). On every input where the two
// environments disagree, the culprit must be the resize alone.
#include "edgefleet/stability_explain.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_support.h"

namespace edgefleet {
namespace {

TEST(StabilityExplain, FindsTheOneStageThatFlipsAndLeavesTheHarmlessOneOut) {
  if (!testing::fashion_mnist_installed()) GTEST_SKIP() << "Fashion-MNIST (Debian dataset-fashion-mnist) is not installed";
  auto card = read_card(std::string(EDGEFLEET_SOURCE_DIR) + "/models/fashion-mnist/cnn_tiny.json");
  if (!card) GTEST_SKIP() << "zoo files not present";
  auto data = open_dataset("fashion-mnist:test").value();
  const auto from = parse_environment("sharp=encode:png|decode:libpng|resize:opencv,nearest,28x28|resize:opencv,nearest,28x28").value();
  const auto to = parse_environment("crushed=encode:png|decode:opencv|resize:opencv,nearest,7x7|resize:opencv,nearest,28x28").value();
  int explained = 0;
  for (std::size_t i = 0; i < 40 && explained < 3; ++i) {
    auto why = explain_flip(*card, *data, i, from, to);
    if (!why) {
      EXPECT_NE(why.status().message().find("agree"), std::string::npos) << why.status().to_string();
      continue;
    }
    ++explained;
    ASSERT_EQ(why->changes.size(), 2u);
    EXPECT_NE(why->changes[0].find("decode:opencv"), std::string::npos) << why->changes[0];
    EXPECT_NE(why->changes[1].find("7x7"), std::string::npos) << why->changes[1];
    EXPECT_EQ(why->culprit, (std::vector<int>{1})) << explanation_to_json(*why).dump(2);
    EXPECT_NE(why->from_top1, why->to_top1);
    ASSERT_GE(why->evaluated.size(), 3u);  // both ends and at least one half
    EXPECT_EQ(explanation_to_json(*why)["culprit"][0], why->changes[1]);
    // Inside the model: the two pictures already differ at the input, and are compared at
    // every conv, pooling and the linear layer.
    EXPECT_EQ(why->activations_error, "");
    ASSERT_GE(why->activations.layers.size(), 5u);
    EXPECT_EQ(why->activations.layers.front().layer, "input");
    EXPECT_LT(why->activations.layers.front().cosine, 1.0);
    EXPECT_EQ(explanation_to_json(*why)["activations"]["layers"].size(), why->activations.layers.size());
  }
  EXPECT_GE(explained, 1) << "no input of the first 40 flipped under the 7x7 crush";
}

TEST(StabilityExplain, AnInsertedStageAndTheSettingAreChangesToo) {
  if (!testing::fashion_mnist_installed()) GTEST_SKIP() << "Fashion-MNIST (Debian dataset-fashion-mnist) is not installed";
  auto card = read_card(std::string(EDGEFLEET_SOURCE_DIR) + "/models/fashion-mnist/cnn_tiny.json");
  if (!card) GTEST_SKIP() << "zoo files not present";
  auto data = open_dataset("fashion-mnist:test").value();
  const auto from = parse_environment("plain=resize:opencv,area,28x28").value();
  const auto to = parse_environment("other=resize:opencv,nearest,5x5|resize:opencv,nearest,28x28|infer:threads=2").value();
  for (std::size_t i = 0; i < 40; ++i) {
    auto why = explain_flip(*card, *data, i, from, to);
    if (!why) continue;
    ASSERT_EQ(why->changes.size(), 3u) << explanation_to_json(*why).dump(2);  // substitute, insert, setting
    EXPECT_NE(why->changes[1].find("insert"), std::string::npos);
    EXPECT_NE(why->changes[2].find("threads=2"), std::string::npos);
    // threads do not change this model's answers: the setting is never part of the culprit.
    EXPECT_EQ(std::count(why->culprit.begin(), why->culprit.end(), 2), 0) << explanation_to_json(*why).dump(2);
    return;
  }
  FAIL() << "no input of the first 40 flipped";
}

}  // namespace
}  // namespace edgefleet
