#include "edgefleet/preprocess.h"

#include <gtest/gtest.h>

namespace edgefleet {

namespace {
Image solid(int w, int h, int channels, std::uint8_t value) {
  return make_image(w, h, channels, std::vector<std::uint8_t>(static_cast<std::size_t>(w) * h * channels, value)).value();
}
InputContract contract(const std::string& color, int size) {
  InputContract c;
  c.color = parse_input_color(color).value();
  c.height = c.width = size;
  return c;
}
}  // namespace

TEST(Preprocess, ScalesPixelsToTheCardRange) {
  InputContract c = contract("gray", 4);
  c.range_min = -1;
  c.range_max = 1;
  auto out = preprocess(solid(4, 4, 1, 255), c).value();
  ASSERT_EQ(out.size(), 16u);
  EXPECT_FLOAT_EQ(out[0], 1.0f);
}

TEST(Preprocess, AppliesMeanAndStdPerChannel) {
  InputContract c = contract("rgb", 2);
  c.mean = {0.5f, 0.0f, 0.0f};
  c.std = {0.5f, 1.0f, 2.0f};
  auto out = preprocess(solid(2, 2, 3, 255), c).value();
  EXPECT_FLOAT_EQ(out[0], 1.0f);      // (1 - 0.5) / 0.5, channel 0
  EXPECT_FLOAT_EQ(out[4], 1.0f);      // channel 1
  EXPECT_FLOAT_EQ(out[8], 0.5f);      // channel 2
}

TEST(Preprocess, GrayBecomesThreeEqualChannelsForRgbModels) {
  auto out = preprocess(solid(3, 3, 1, 51), contract("rgb", 3)).value();
  ASSERT_EQ(out.size(), 27u);
  EXPECT_FLOAT_EQ(out[0], 0.2f);
  EXPECT_FLOAT_EQ(out[9], 0.2f);
  EXPECT_FLOAT_EQ(out[18], 0.2f);
}

TEST(Preprocess, BgrModelsGetChannelsSwapped) {
  std::vector<std::uint8_t> pixels = {255, 0, 0};  // one red pixel
  auto out = preprocess(make_image(1, 1, 3, pixels).value(), contract("bgr", 1)).value();
  EXPECT_FLOAT_EQ(out[0], 0.0f);
  EXPECT_FLOAT_EQ(out[2], 1.0f);
}

TEST(Preprocess, ShorterSideResizeThenCentreCropKeepsAspect) {
  // 40x20 image, left half black, right half white: shorter side to 16 (32x16), crop 16x16.
  std::vector<std::uint8_t> pixels(40 * 20);
  for (int y = 0; y < 20; ++y) {
    for (int x = 20; x < 40; ++x) pixels[y * 40 + x] = 255;
  }
  InputContract c = contract("gray", 16);
  c.resize = ResizeRule::kShorterSide;
  c.resize_size = 16;
  c.interpolation = Interpolation::kNearest;
  auto geometry = preprocess_geometry(make_image(40, 20, 1, pixels).value(), c).value();
  EXPECT_EQ(geometry.width, 16);
  EXPECT_EQ(geometry.height, 16);
  EXPECT_EQ(geometry.at(8, 0, 0), 0);     // crop spans x 8..24 of 32: left part black
  EXPECT_EQ(geometry.at(8, 15, 0), 255);  // right part white
}

TEST(Preprocess, AntialiasedDownscaleAveragesStripes) {
  // Alternating black/white columns: nearest keeps stripes, antialiased bilinear averages.
  std::vector<std::uint8_t> pixels(64 * 64);
  for (int y = 0; y < 64; ++y) {
    for (int x = 0; x < 64; ++x) pixels[y * 64 + x] = x % 2 ? 255 : 0;
  }
  InputContract c = contract("gray", 8);
  auto smooth = preprocess_geometry(make_image(64, 64, 1, pixels).value(), c).value();
  EXPECT_NEAR(smooth.at(4, 4, 0), 128, 2);
  c.interpolation = Interpolation::kNearest;
  auto sharp = preprocess_geometry(make_image(64, 64, 1, pixels).value(), c).value();
  EXPECT_TRUE(sharp.at(4, 4, 0) == 0 || sharp.at(4, 4, 0) == 255);
}

TEST(Preprocess, EmptyImageIsRejected) {
  EXPECT_EQ(preprocess(Image{}, contract("gray", 4)).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace edgefleet
