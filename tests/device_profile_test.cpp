#include "edgefleet/device_profile.h"

#include <stdexcept>
#include <variant>

#include "edgefleet/camera.h"
#include "edgefleet/pipeline.h"

#include <gtest/gtest.h>

#include <set>

#include "test_support.h"

namespace edgefleet {
using nlohmann::json;

namespace {
json valid_profile() {
  return json::parse(R"({
    "name": "pi", "class": "single-board",
    "hardware": {"soc": "BCM2837", "peak_gflops": 6, "memory_bandwidth_gbs": 8.5, "memory_mb": 2048,
                 "sources": ["spec sheet"]},
    "environment": {"pipeline": "encode:jpeg,quality=85|decode:turbojpeg,dct=islow|resize:opencv,linear,model",
                    "precision": "fp32"},
    "network": {"rtt_ms_mean": 50, "rtt_ms_std": 10}})");
}
std::string error_of(const json& j) { return device_profile_from_json(j, "pi.json").status().message(); }
}  // namespace

TEST(DeviceProfile, ValidProfileParsesWithDefaults) {
  auto p = device_profile_from_json(valid_profile(), "pi.json").value();
  EXPECT_EQ(p.hardware.peak_gflops, 6.0);
  EXPECT_EQ(p.environment.inference, InferenceSetting{});
  EXPECT_EQ(pipeline_to_string(p.environment.pipeline), "encode:jpeg,quality=85|decode:turbojpeg|resize:opencv,linear,model");
  EXPECT_EQ(p.network.rtt_ms_std, 10.0);
}

TEST(DeviceProfile, NegativePeakIsRejectedWithItsValue) {
  json j = valid_profile();
  j["hardware"]["peak_gflops"] = -3;
  EXPECT_EQ(error_of(j), "pi.json: field 'hardware.peak_gflops' must be a number in (0, 1e+07], got -3");
}

TEST(DeviceProfile, MisspelledFieldIsNamed) {
  json j = valid_profile();
  j["hardware"]["memory_mbs"] = 10;
  EXPECT_NE(error_of(j).find("unknown field 'hardware.memory_mbs'"), std::string::npos);
}

TEST(DeviceProfile, UnknownPrecisionListsTheChoices) {
  json j = valid_profile();
  j["environment"]["precision"] = "fp8";
  EXPECT_EQ(error_of(j),
            "pi.json: field 'environment.precision': infer: precision 'fp8' is not one of: fp32, bf16, fp16, int8-channel, "
            "int8-tensor, int8");
}

TEST(DeviceProfile, TakesEveryPrecisionAStabilitySpecTakes) {
  json j = valid_profile();
  for (const std::string name : {"fp32", "bf16", "fp16", "int8", "int8-channel", "int8-tensor"}) {
    j["environment"]["precision"] = name;
    auto p = device_profile_from_json(j, "pi.json");
    ASSERT_TRUE(p.has_value()) << name << ": " << p.status().message();
    EXPECT_EQ(p->environment.inference, parse_inference_setting("precision=" + name).value()) << name;
  }
}

TEST(DeviceProfile, AnEngineThatCannotRunThePrecisionIsRefused) {
  json j = valid_profile();
  j["environment"]["engine"] = "opencv-dnn";
  j["environment"]["precision"] = "fp16";
  EXPECT_NE(error_of(j).find("field 'environment': infer: engine opencv-dnn runs the ONNX copy as exported"), std::string::npos)
      << error_of(j);
}

TEST(DeviceProfile, RoundTripsThroughJson) {
  json j = valid_profile();
  j["environment"]["precision"] = "int8";
  j["environment"]["threads"] = 2;
  const DeviceProfile p = device_profile_from_json(j, "pi.json").value();
  const DeviceProfile again = device_profile_from_json(device_profile_to_json(p), "pi.json").value();
  EXPECT_EQ(pipeline_to_string(again.environment.pipeline), pipeline_to_string(p.environment.pipeline));
  EXPECT_EQ(again.environment.inference, p.environment.inference);
  EXPECT_EQ(again.environment.inference.threads, 2);
}

// `edgefleet device calibrate --profile` adds a latency_model section: the profile stays valid
// and keeps it; anything but an object there is refused.
TEST(DeviceProfile, KeepsTheLatencyModelDeviceCalibrateAdds) {
  json j = valid_profile();
  j["latency_model"] = {{"threads", 1}, {"kernels", {{"conv1x1", {{"coefficients", {0.1, 0.2, 0.0, 0.0}}}}}}};
  const DeviceProfile p = device_profile_from_json(j, "pi.json").value();
  EXPECT_EQ(json::parse(p.latency_model), j["latency_model"]);
  EXPECT_EQ(device_profile_to_json(p)["latency_model"], j["latency_model"]);
  EXPECT_EQ(device_profile_to_json(device_profile_from_json(valid_profile(), "pi.json").value()).count("latency_model"), 0u);
  j["latency_model"] = "fast";
  EXPECT_NE(error_of(j).find("'latency_model' must be an object"), std::string::npos) << error_of(j);
}

TEST(DeviceProfile, JpegQualityOutOfRangeIsRejected) {
  json j = valid_profile();
  j["environment"]["pipeline"] = "encode:jpeg,quality=120";
  EXPECT_NE(error_of(j).find("field 'environment.pipeline'"), std::string::npos);
  EXPECT_NE(error_of(j).find("quality 120 is out of range [1, 100]"), std::string::npos);
}

TEST(DeviceProfile, UnknownCodecIsRejectedWithTheChoices) {
  json j = valid_profile();
  j["environment"]["pipeline"] = "encode:gif";
  EXPECT_NE(error_of(j).find("format 'gif' is not one of: jpeg, png, webp, heif"), std::string::npos);
}

TEST(DeviceProfile, PipelineMayBeGivenAsJsonStages) {
  json j = valid_profile();
  j["environment"]["pipeline"] = json::parse(R"([{"stage": "decode", "decoder": "opencv"}])");
  EXPECT_EQ(pipeline_to_string(device_profile_from_json(j, "pi.json").value().environment.pipeline), "decode:opencv");
}

TEST(DeviceProfile, HardwareNeedsItsSources) {
  json j = valid_profile();
  j["hardware"].erase("sources");
  EXPECT_NE(error_of(j).find("hardware.sources"), std::string::npos);
}

TEST(DeviceProfile, MissingTraceFileIsReported) {
  json j = valid_profile();
  j["network"] = {{"trace", "no-such-trace.csv"}};
  EXPECT_NE(error_of(j).find("no-such-trace.csv' does not exist"), std::string::npos);
}

TEST(Fleet, BuiltinNamesTheInstalledFleetAndADeviceIsFoundByName) {
  EXPECT_EQ(read_fleet("builtin").value().size(), read_fleet(builtin_fleet_dir()).value().size());
  EXPECT_EQ(find_device("builtin", "iphone-xr").value().name, "iphone-xr");
  const auto missing = find_device("builtin", "iphone-99");
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.status().message().find("no device 'iphone-99'"), std::string::npos);
  EXPECT_NE(missing.status().message().find("iphone-xr"), std::string::npos);  // the choices are listed
}

TEST(Fleet, BuiltInFleetIsValidAndSpansMicrocontrollerToServer) {
  auto fleet = read_fleet(std::string(EDGEFLEET_SOURCE_DIR) + "/fleet").value();
  EXPECT_GE(fleet.size(), 6u);
  std::set<std::string> classes;
  double min_peak = 1e18, max_peak = 0;
  bool iphone_uses_heif = false;
  for (const auto& p : fleet) {
    classes.insert(p.device_class);
    min_peak = std::min(min_peak, p.hardware.peak_gflops);
    max_peak = std::max(max_peak, p.hardware.peak_gflops);
    if (p.name == "iphone-xr") iphone_uses_heif = pipeline_to_string(p.environment.pipeline).find("encode:heif") != std::string::npos;
  }
  EXPECT_TRUE(classes.count("microcontroller"));
  EXPECT_TRUE(classes.count("phone"));
  EXPECT_TRUE(classes.count("edge-server"));
  EXPECT_GT(max_peak / min_peak, 1000.0);
  EXPECT_TRUE(iphone_uses_heif);
}

TEST(Fleet, DuplicateDeviceNamesAreRejected) {
  testing::TempDir dir;
  testing::write_text(dir.file("a.json"), valid_profile().dump());
  testing::write_text(dir.file("b.json"), valid_profile().dump());
  auto fleet = read_fleet(dir.path());
  EXPECT_NE(fleet.status().message().find("device name 'pi' is already used"), std::string::npos);
}

TEST(Fleet, EmptyFolderIsRejected) {
  testing::TempDir dir;
  EXPECT_NE(read_fleet(dir.path()).status().message().find("holds no device profiles"), std::string::npos);
}


// The published rows the phones fleet cites (BorealisAI/noise_flow cam_iso_nlf.txt, ISO 100).
struct PublishedNoise {
  const char* phone;
  const char* sidd_camera;
  double beta1, beta2;
};
constexpr PublishedNoise kPublishedIso100[] = {{"galaxy-s10", "S6", 0.000479, 0.000002},
                                               {"htc-desire-10", "GP", 0.000228, 0.000002},
                                               {"iphone-xr", "IP", 0.000702, 0.000003},
                                               {"lg-k10", "G4", 0.000739, 0.000002},
                                               {"moto-g5", "N6", 0.000473, 0.000003}};

const CameraOptions& camera_of(const DeviceProfile& phone) {
  for (const auto& stage : phone.environment.pipeline.stages) {
    if (const auto* camera = std::get_if<CameraStage>(&stage)) return camera->options;
  }
  throw std::runtime_error(phone.name + " has no camera stage");
}

TEST(PhonesFleet, HoldsThePapersFivePhonesEachCitingItsNoiseSource) {
  const auto fleet = read_fleet("phones").value();
  ASSERT_EQ(fleet.size(), 5u);
  for (std::size_t i = 0; i < fleet.size(); ++i) {
    const PublishedNoise& published = kPublishedIso100[i];
    EXPECT_EQ(fleet[i].name, published.phone);
    const CameraOptions& camera = camera_of(fleet[i]);
    ASSERT_TRUE(camera.noise_level_function.has_value()) << fleet[i].name;
    EXPECT_EQ(camera.noise_level_function->camera, published.sidd_camera);
    EXPECT_EQ(camera.noise_level_function->iso, 100);
    EXPECT_DOUBLE_EQ(camera.shot_noise, published.beta1);
    EXPECT_DOUBLE_EQ(camera.read_noise, published.beta2);
    // The capture ends with the codec the camera app writes; the app side follows.
    const PipelineParts parts = split_capture(fleet[i].environment.pipeline);
    ASSERT_FALSE(parts.capture.stages.empty());
    EXPECT_TRUE(std::holds_alternative<ScreenStage>(parts.capture.stages.front()));
    EXPECT_TRUE(std::holds_alternative<EncodeStage>(parts.capture.stages.back()));
    EXPECT_TRUE(std::holds_alternative<DecodeStage>(parts.deployment.stages.front()));
  }
}

TEST(PhonesFleet, EachPhonesSensorReproducesItsNoiseLevelFunctionOnAFlatFieldPerPhotositeAndBinned) {
  const auto phones = read_fleet("phones").value();
  for (const auto& phone : phones) {
    ASSERT_GT(camera_of(phone).photosites, 0) << phone.name;
    // Per photosite (binning off), then as the model sees it: K x K photosites averaged.
    for (const bool binned : {false, true}) {
    CameraOptions noisy = camera_of(phone);
    if (!binned) noisy.photosites = 0;
    CameraOptions clean = noisy;
    clean.shot_noise = clean.read_noise = 0;
    const double k = noisy.photosites * noisy.fill / 512.0;
    for (std::uint8_t level : {40, 110, 200}) {
      Image flat;
      flat.width = flat.height = 512;
      flat.channels = 3;
      flat.pixels.assign(512 * 512 * 3, level);
      const RawMosaic signal = unprocess_to_raw(flat, clean).value();
      const RawMosaic measured = unprocess_to_raw(flat, noisy).value();
      for (int channel = 0; channel < 3; ++channel) {
        double x = 0, sum = 0, sum2 = 0, n = 0;
        for (int y = 0; y < signal.height; ++y) {
          for (int px = 0; px < signal.width; ++px) {
            const int c = (y & 1) * 2 + (px & 1);  // RGGB
            if ((c == 0 ? 0 : c == 3 ? 2 : 1) != channel) continue;
            const std::size_t i = static_cast<std::size_t>(y) * signal.width + px;
            const double d = measured.values[i] - signal.values[i];
            x = signal.values[i];
            sum += d;
            sum2 += d * d;
            n += 1;
          }
        }
        const double variance = sum2 / n - (sum / n) * (sum / n);
        const double expected = (noisy.shot_noise * x + noisy.read_noise) / (binned ? k * k : 1.0);
        EXPECT_NEAR(variance / expected, 1.0, 0.05)
            << phone.name << " level " << int(level) << " channel " << channel << " x=" << x << " binned " << binned;
      }
    }
    }
  }
}

}  // namespace edgefleet
