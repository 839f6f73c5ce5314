#include "edgefleet/raw_file.h"

#include <gtest/gtest.h>
#include <opencv2/imgproc.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "edgefleet/decode.h"
#include "test_support.h"

namespace edgefleet {
namespace {

using testing::make_test_photo;
using testing::mean_abs_diff;

Image smooth_photo(int width = 96, int height = 64) {
  Image photo = make_test_photo(width, height);
  cv::Mat mat(photo.height, photo.width, CV_8UC3, photo.pixels.data());
  cv::GaussianBlur(mat, mat, cv::Size(0, 0), 2.0);
  return photo;
}

TEST(RawFile, ADngWrittenFromTheSensorReadsBackToTheSameMosaic) {
  for (BayerPattern bayer : {BayerPattern::kRggb, BayerPattern::kBggr, BayerPattern::kGrbg, BayerPattern::kGbrg}) {
    CameraOptions sensor;
    sensor.bayer = bayer;
    sensor.shot_noise = 0.001;
    sensor.sensor = 2;
    const RawMosaic raw = unprocess_to_raw(smooth_photo(), sensor).value();
    const auto dng = encode_dng(raw, sensor, 2.0, 1.6).value();
    const RawMosaic back = decode_raw_mosaic(dng, "virtual.dng").value();
    ASSERT_EQ(back.width, raw.width);
    ASSERT_EQ(back.height, raw.height);
    EXPECT_EQ(back.bayer, bayer);
    double worst = 0;
    for (std::size_t i = 0; i < raw.values.size(); ++i) worst = std::max(worst, double(std::abs(back.values[i] - raw.values[i])));
    EXPECT_LE(worst, 1.0 / 65535.0) << "pattern " << static_cast<int>(bayer);
  }
}

TEST(RawFile, BadRawFilesAreClearErrors) {
  EXPECT_EQ(decode_raw_mosaic({1, 2, 3}, "x.dng").status().code(), StatusCode::kCorrupt);
  RawMosaic odd;
  odd.width = 1;
  EXPECT_EQ(encode_dng(odd, {}, 1, 1).status().code(), StatusCode::kInvalidArgument);
  DecodeOptions libraw;
  libraw.decoder = Decoder::kLibRaw;
  EXPECT_EQ(decode_image({'n', 'o', 't', ' ', 'r', 'a', 'w'}, "x.dng", libraw).status().code(), StatusCode::kCorrupt);
}

// Each real developer turns the virtual sensor's DNG into a picture of the scene.
TEST(RawDevelopers, EachInstalledDeveloperDevelopsTheVirtualSensorsDng) {
  const Image scene = smooth_photo(224, 224);  // RawTherapee 5.9 refuses a 160x128 mosaic
  int developed = 0;
  for (IspEngine engine : {IspEngine::kDcraw, IspEngine::kDarktable, IspEngine::kRawTherapee}) {
    const auto version = raw_developer_version(engine);
    if (!version) {
      std::cout << "skipped " << isp_engine_name(engine) << ": " << version.status().message() << "\n";
      continue;
    }
    CameraOptions options;
    options.isp = engine;
    options.demosaic = demosaic_methods(engine).front();
    const auto picture = simulate_camera(scene, options);
    ASSERT_TRUE(picture.has_value()) << *version << ": " << picture.status().message();
    EXPECT_EQ(picture->width, scene.width);
    EXPECT_EQ(picture->height, scene.height);
    EXPECT_LT(mean_abs_diff(*picture, scene), 60.0) << *version;  // the scene, in the developer's own rendering
    EXPECT_NE(version->find(isp_engine_name(engine)), std::string::npos);
    ++developed;
  }
  if (developed == 0) GTEST_SKIP() << "no raw developer installed";
}

TEST(RawFile, ARealCameraDngDecodesThroughLibRaw) {
  const std::string path = std::string(EDGEFLEET_SOURCE_DIR) + "/../shared/raw/blackmagic-pocket-4k.dng";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "../shared is absent";
  std::ifstream in(path, std::ios::binary);
  const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const RawMosaic mosaic = decode_raw_mosaic(bytes, path).value();
  EXPECT_EQ(mosaic.width, 4128);
  EXPECT_EQ(mosaic.height, 2176);
  DecodeOptions libraw;
  libraw.decoder = Decoder::kLibRaw;
  const Image image = decode_image(bytes, path, libraw).value();
  EXPECT_EQ(image.channels, 3);
  EXPECT_GT(image.width, 4000);
}

}  // namespace
}  // namespace edgefleet
