#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>

#include "edgefleet/color_conversion.h"
#include "test_support.h"

namespace edgefleet {
namespace {

using testing::make_test_photo;
using testing::max_abs_diff;
using testing::mean_abs_diff;

Image solid(std::uint8_t r, std::uint8_t g, std::uint8_t b, int size = 8) {
  Image image;
  image.width = image.height = size;
  image.channels = 3;
  for (int i = 0; i < size * size; ++i) image.pixels.insert(image.pixels.end(), {r, g, b});
  return image;
}

TEST(ColorConversion, Bt601AndBt709DifferByTheExpectedLumaOnPureRed) {
  const YCbCr bt601 = rgb_to_ycbcr(255, 0, 0, YuvMatrix::kBt601, YuvRange::kFull);
  const YCbCr bt709 = rgb_to_ycbcr(255, 0, 0, YuvMatrix::kBt709, YuvRange::kFull);
  EXPECT_NEAR(bt601.y, 0.299 * 255, 1e-9);
  EXPECT_NEAR(bt709.y, 0.2126 * 255, 1e-9);
  EXPECT_NEAR(bt601.y - bt709.y, 22.0, 0.1);
  EXPECT_NEAR(bt601.cr, 255.5, 1e-9);  // full-range Cr of red is 128 + 127.5
}

TEST(ColorConversion, LimitedRangeMapsBlackAndWhiteToStudioLevels) {
  EXPECT_NEAR(rgb_to_ycbcr(0, 0, 0, YuvMatrix::kBt709, YuvRange::kLimited).y, 16.0, 1e-9);
  EXPECT_NEAR(rgb_to_ycbcr(255, 255, 255, YuvMatrix::kBt709, YuvRange::kLimited).y, 235.0, 1e-9);
  EXPECT_NEAR(rgb_to_ycbcr(255, 255, 255, YuvMatrix::kBt601, YuvRange::kLimited).cb, 128.0, 1e-9);
}

TEST(ColorConversion, Bt601FullMatchesOpenCvsYCrCb) {
  const Image photo = make_test_photo(40, 30);
  cv::Mat rgb(photo.height, photo.width, CV_8UC3, const_cast<std::uint8_t*>(photo.pixels.data()));
  cv::Mat ycrcb;
  cv::cvtColor(rgb, ycrcb, cv::COLOR_RGB2YCrCb);
  for (int y = 0; y < photo.height; y += 7) {
    for (int x = 0; x < photo.width; x += 5) {
      const YCbCr ours = rgb_to_ycbcr(photo.at(y, x, 0), photo.at(y, x, 1), photo.at(y, x, 2), YuvMatrix::kBt601, YuvRange::kFull);
      const cv::Vec3b theirs = ycrcb.at<cv::Vec3b>(y, x);
      EXPECT_NEAR(ours.y, theirs[0], 1.0);
      EXPECT_NEAR(ours.cr, theirs[1], 1.0);
      EXPECT_NEAR(ours.cb, theirs[2], 1.0);
    }
  }
}

TEST(ColorConversion, FloatRoundTripIsNearlyExactAndUint8AddsRoundingError) {
  const Image photo = make_test_photo(64, 48);
  ColorConversionOptions options;
  options.round_to_uint8 = false;
  EXPECT_LE(max_abs_diff(color_round_trip(photo, options).value(), photo), 1);
  options.round_to_uint8 = true;
  options.range = YuvRange::kLimited;
  const Image rounded = color_round_trip(photo, options).value();
  EXPECT_GT(max_abs_diff(rounded, photo), 0);
  EXPECT_LE(max_abs_diff(rounded, photo), 3);
}

TEST(ColorConversion, MismatchedMatricesShiftColoursButNotGrays) {
  // A device that encodes with BT.601 and a consumer that assumes BT.709 is modelled by two
  // stages; here: the same matrix both ways keeps grays exact for either standard.
  for (YuvMatrix matrix : {YuvMatrix::kBt601, YuvMatrix::kBt709}) {
    ColorConversionOptions options;
    options.matrix = matrix;
    EXPECT_EQ(color_round_trip(solid(128, 128, 128), options).value().pixels, solid(128, 128, 128).pixels);
  }
  ColorConversionOptions bt601, bt709;
  bt709.matrix = YuvMatrix::kBt709;
  const Image photo = make_test_photo(64, 48);
  EXPECT_GT(max_abs_diff(color_round_trip(photo, bt601).value(), color_round_trip(photo, bt709).value()), 0);
}

TEST(ColorConversion, ChromaSubsamplingBlursColourEdgesOnly) {
  ColorConversionOptions c444, c420;
  c420.chroma = ChromaSubsampling::k420;
  const Image photo = make_test_photo(64, 48);
  const double error444 = mean_abs_diff(color_round_trip(photo, c444).value(), photo);
  const double error420 = mean_abs_diff(color_round_trip(photo, c420).value(), photo);
  EXPECT_GT(error420, error444);
  // A flat colour has no chroma detail to lose.
  EXPECT_LE(max_abs_diff(color_round_trip(solid(200, 40, 90), c420).value(), color_round_trip(solid(200, 40, 90), c444).value()), 1);
}

TEST(ColorConversion, BgrOrderSwapsRedAndBlue) {
  ColorConversionOptions options;
  options.swap_red_blue = true;
  options.round_to_uint8 = false;
  const Image out = color_round_trip(solid(250, 100, 10), options).value();
  EXPECT_NEAR(out.at(0, 0, 0), 10, 1);
  EXPECT_NEAR(out.at(0, 0, 2), 250, 1);
}

TEST(ColorConversion, GrayPassesAndOtherChannelCountsAreRefused) {
  const Image gray = make_test_photo(8, 8, 1);
  EXPECT_EQ(color_round_trip(gray, {}).value().pixels, gray.pixels);
  EXPECT_EQ(color_round_trip(make_test_photo(8, 8, 4), {}).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace edgefleet
