#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>

#include "edgefleet/camera.h"
#include "test_support.h"

namespace edgefleet {
namespace {

using testing::make_test_photo;
using testing::max_abs_diff;
using testing::mean_abs_diff;

CameraOptions isp(IspEngine engine, const std::string& demosaic) {
  CameraOptions options;
  options.isp = engine;
  options.demosaic = demosaic;
  return options;
}

// The test photo without detail finer than the Bayer grid, which no demosaicer can restore.
Image smooth_photo() {
  Image photo = make_test_photo(96, 64);
  cv::Mat mat(photo.height, photo.width, CV_8UC3, photo.pixels.data());
  cv::GaussianBlur(mat, mat, cv::Size(0, 0), 2.0);
  return photo;
}

TEST(VirtualCamera, AnIdealCameraReproducesTheScene) {
  const Image photo = smooth_photo();
  for (const std::string& method : demosaic_methods(IspEngine::kOpenCv)) {
    const Image out = simulate_camera(photo, isp(IspEngine::kOpenCv, method)).value();
    ASSERT_EQ(out.width, 96);
    ASSERT_EQ(out.height, 64);
    EXPECT_LT(mean_abs_diff(out, photo), 6.0) << method;  // only demosaicing loses detail
  }
}

// Every sensor's colour matrix, libcamera's CCM interpolated to D65 included, is undone by the
// ISP; the raw colours differ between sensors.
TEST(VirtualCamera, EverySensorsColourMatrixIsUndoneByTheIsp) {
  const Image photo = smooth_photo();
  ASSERT_EQ(sensor_matrix_count(), kUnprocessingSensors + static_cast<int>(libcamera_sensors().size()));
  std::vector<RawMosaic> raws;
  for (int sensor = 0; sensor < sensor_matrix_count(); ++sensor) {
    CameraOptions options = isp(IspEngine::kOpenCv, "ea");
    options.sensor = sensor;
    EXPECT_LT(mean_abs_diff(simulate_camera(photo, options).value(), photo), 6.0) << sensor_name(sensor);
    raws.push_back(unprocess_to_raw(photo, options).value());
  }
  const RawMosaic& imx219 = raws.at(parse_sensor("imx219").value());
  double difference = 0;
  for (std::size_t i = 0; i < imx219.values.size(); ++i) difference += std::abs(imx219.values[i] - raws[0].values[i]);
  EXPECT_GT(difference / imx219.values.size(), 0.005);
  EXPECT_EQ(sensor_name(parse_sensor("imx219").value()), "imx219");
  EXPECT_EQ(parse_sensor("2").value(), 2);
  EXPECT_FALSE(parse_sensor("imx999"));
}

TEST(VirtualCamera, LibRawIspGivesASimilarButDifferentPicture) {
  const Image photo = make_test_photo(96, 64);
  const Image opencv = simulate_camera(photo, isp(IspEngine::kOpenCv, "bilinear")).value();
  for (const std::string& method : demosaic_methods(IspEngine::kLibRaw)) {
    const Image libraw = simulate_camera(photo, isp(IspEngine::kLibRaw, method)).value();
    ASSERT_EQ(libraw.width, 96) << method;
    ASSERT_EQ(libraw.height, 64) << method;
    EXPECT_LT(mean_abs_diff(libraw, photo), 12.0) << method;  // visibly similar
    EXPECT_GT(max_abs_diff(libraw, opencv), 0) << method;     // numerically different
  }
}

TEST(VirtualCamera, IspChoicesMatter) {
  const Image photo = make_test_photo(96, 64);
  const Image base = simulate_camera(photo, isp(IspEngine::kOpenCv, "bilinear")).value();
  CameraOptions options = isp(IspEngine::kOpenCv, "bilinear");
  options.white_balance = WhiteBalance::kGrayWorld;
  EXPECT_GT(mean_abs_diff(simulate_camera(photo, options).value(), base), 0.5);
  options = isp(IspEngine::kOpenCv, "bilinear");
  options.color_matrix = false;
  EXPECT_GT(mean_abs_diff(simulate_camera(photo, options).value(), base), 1.0);
  options = isp(IspEngine::kOpenCv, "bilinear");
  options.gamma = GammaCurve::kBt709;
  EXPECT_GT(mean_abs_diff(simulate_camera(photo, options).value(), base), 0.5);
  options = isp(IspEngine::kOpenCv, "bilinear");
  options.sharpen = 0.8;
  EXPECT_GT(max_abs_diff(simulate_camera(photo, options).value(), base), 0);
}

TEST(VirtualCamera, NoiseIsSeededAndDeterministic) {
  const Image photo = make_test_photo(64, 48);
  CameraOptions noisy = isp(IspEngine::kOpenCv, "bilinear");
  noisy.shot_noise = 0.002;
  noisy.read_noise = 0.0001;
  const Image a = simulate_camera(photo, noisy).value();
  EXPECT_EQ(a.pixels, simulate_camera(photo, noisy).value().pixels);
  noisy.seed = 7;
  EXPECT_NE(a.pixels, simulate_camera(photo, noisy).value().pixels);
  EXPECT_GT(max_abs_diff(a, simulate_camera(photo, isp(IspEngine::kOpenCv, "bilinear")).value()), 0);
}

TEST(VirtualCamera, EveryBayerLayoutKeepsColoursWhereTheyAre) {
  Image red;
  red.width = 16;
  red.height = 16;
  red.channels = 3;
  for (int i = 0; i < 256; ++i) red.pixels.insert(red.pixels.end(), {220, 30, 40});
  for (BayerPattern bayer : {BayerPattern::kRggb, BayerPattern::kBggr, BayerPattern::kGrbg, BayerPattern::kGbrg}) {
    for (IspEngine engine : {IspEngine::kOpenCv, IspEngine::kLibRaw}) {
      CameraOptions options = isp(engine, demosaic_methods(engine).front());
      options.bayer = bayer;
      const Image out = simulate_camera(red, options).value();
      EXPECT_NEAR(out.at(8, 8, 0), 220, 12) << static_cast<int>(bayer) << " " << static_cast<int>(engine);
      EXPECT_NEAR(out.at(8, 8, 2), 40, 12) << static_cast<int>(bayer) << " " << static_cast<int>(engine);
    }
  }
}

TEST(VirtualCamera, RawMosaicHasOneValuePerPhotositeAndEvenSize) {
  const RawMosaic raw = unprocess_to_raw(make_test_photo(33, 21), CameraOptions{}).value();
  EXPECT_EQ(raw.width, 32);
  EXPECT_EQ(raw.height, 20);
  EXPECT_EQ(raw.values.size(), 640u);
  for (float v : raw.values) ASSERT_TRUE(v >= 0.0f && v <= 1.0f);
}

TEST(VirtualCamera, OddSizedScenesKeepTheirSize) {
  const Image photo = make_test_photo(33, 21);
  for (IspEngine engine : {IspEngine::kOpenCv, IspEngine::kLibRaw}) {
    const Image out = simulate_camera(photo, isp(engine, demosaic_methods(engine).front())).value();
    EXPECT_EQ(out.width, 33);
    EXPECT_EQ(out.height, 21);
  }
}

TEST(VirtualCamera, BadOptionsAreRefused) {
  EXPECT_EQ(simulate_camera(make_test_photo(1, 1), {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(simulate_camera(make_test_photo(8, 8), isp(IspEngine::kOpenCv, "ahd")).status().code(), StatusCode::kInvalidArgument);
  CameraOptions negative;
  negative.shot_noise = -1;
  EXPECT_EQ(simulate_camera(make_test_photo(8, 8), negative).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace edgefleet
