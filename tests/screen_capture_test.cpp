#include "edgefleet/screen_capture.h"

#include <gtest/gtest.h>

#include "test_support.h"

namespace edgefleet {
namespace {

using testing::make_test_photo;
using testing::max_abs_diff;
using testing::mean_abs_diff;

ScreenCaptureOptions mount_tolerances(std::uint64_t seed) {
  ScreenCaptureOptions options;
  options.scale = 0.02;
  options.shift = 0.01;
  options.rotate = 1;
  options.keystone = 0.02;
  options.blur = 0.01;
  options.exposure = 0.33;
  options.seed = seed;
  return options;
}

TEST(ScreenCapture, ZeroTolerancesLeaveThePictureUntouched) {
  const Image photo = make_test_photo(64, 48);
  const Image out = photograph_screen(photo, ScreenCaptureOptions{}).value();
  EXPECT_EQ(out.pixels, photo.pixels);
}

TEST(ScreenCapture, ASessionIsOneDeterministicDrawWithinTheTolerances) {
  const Image photo = make_test_photo(64, 48);
  const ScreenCaptureOptions options = mount_tolerances(7);
  EXPECT_EQ(photograph_screen(photo, options).value().pixels, photograph_screen(photo, options).value().pixels);
  for (std::uint64_t seed = 0; seed < 50; ++seed) {
    const ScreenCaptureDraw d = draw_screen_capture(mount_tolerances(seed));
    EXPECT_LE(std::abs(d.scale - 1.0), 0.02);
    EXPECT_LE(std::abs(d.shift_x), 0.01);
    EXPECT_LE(std::abs(d.rotate_degrees), 1.0);
    EXPECT_LE(std::abs(d.keystone), 0.02);
    EXPECT_GE(d.blur, 0.0);
    EXPECT_LE(d.blur, 0.01);
    EXPECT_LE(std::abs(d.exposure), 0.33);
  }
  // Another session photographs the same picture differently, but only slightly.
  const Image a = photograph_screen(photo, mount_tolerances(1)).value();
  const Image b = photograph_screen(photo, mount_tolerances(2)).value();
  EXPECT_GT(max_abs_diff(a, b), 0);
  EXPECT_LT(mean_abs_diff(a, photo), 40.0);
}

TEST(ScreenCapture, ExposureBrightensInLinearLightAndShiftMovesThePicture) {
  Image gray;
  gray.width = gray.height = 8;
  gray.channels = 3;
  gray.pixels.assign(8 * 8 * 3, 100);
  ScreenCaptureOptions brighter;
  brighter.exposure = 1.0;
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    brighter.seed = seed;
    const ScreenCaptureDraw d = draw_screen_capture(brighter);
    const int out = photograph_screen(gray, brighter).value().pixels[0];
    EXPECT_EQ(out > 100, d.exposure > 0.02) << d.exposure;
  }
  Image bar;  // a bright column in a dark picture
  bar.width = bar.height = 40;
  bar.channels = 1;
  bar.pixels.assign(40 * 40, 0);
  for (int y = 0; y < 40; ++y) bar.pixels[y * 40 + 20] = 255;
  ScreenCaptureOptions shifted;
  shifted.shift = 0.1;  // up to 4 pixels
  shifted.seed = 3;
  const ScreenCaptureDraw d = draw_screen_capture(shifted);
  const Image out = photograph_screen(bar, shifted).value();
  int brightest = 0;
  for (int x = 0; x < 40; ++x) brightest = out.pixels[20 * 40 + x] > out.pixels[20 * 40 + brightest] ? x : brightest;
  EXPECT_NEAR(brightest, 20 + d.shift_x * 40, 1.0);
}

TEST(ScreenCapture, BadInputIsAClearError) {
  EXPECT_EQ(photograph_screen(Image{}, {}).status().code(), StatusCode::kInvalidArgument);
  ScreenCaptureOptions negative;
  negative.blur = -1;
  EXPECT_NE(photograph_screen(make_test_photo(8, 8), negative).status().message().find("must not be negative"), std::string::npos);
}

}  // namespace
}  // namespace edgefleet
