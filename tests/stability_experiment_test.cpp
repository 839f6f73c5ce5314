#include "edgefleet/stability_experiment.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "edgefleet/device_profile.h"
#include "edgefleet/stability_axes.h"
#include "test_support.h"

namespace edgefleet {
namespace {

std::string error_reading(const std::string& text) {
  testing::TempDir dir;
  testing::write_text(dir.file("e.json"), text);
  const auto experiment = read_experiment(dir.file("e.json"));
  EXPECT_FALSE(experiment.has_value()) << text;
  return experiment.has_value() ? "" : experiment.status().message();
}

TEST(StabilityExperiment, EveryBuiltInExperimentFileReadsAndResolves) {
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(EDGEFLEET_SOURCE_DIR) + "/experiments")) {
    if (entry.path().extension() != ".json") continue;
    ++files;
    auto experiment = read_experiment(entry.path().string());
    ASSERT_TRUE(experiment.has_value()) << experiment.status().message();
    auto environments = experiment_environments(*experiment, /*encoded_source=*/true);
    EXPECT_TRUE(environments.has_value()) << entry.path() << ": " << environments.status().message();
  }
  EXPECT_GT(files, 5);
}

TEST(StabilityExperiment, BadFilesNameTheFieldAtFault) {
  EXPECT_NE(error_reading(R"({"fleets": "builtin"})").find("unknown field 'fleets'"), std::string::npos);
  EXPECT_NE(error_reading(R"({"axes": "jpeg-quality"})").find("axes: not a list of axis names"), std::string::npos);
  EXPECT_NE(error_reading(R"({"environments": [{"name": "a"}]})").find("each needs a string name and spec"), std::string::npos);
  EXPECT_NE(error_reading(R"({"environments": [{"name": "a", "spec": "decode:gif"}]})").find("e.json: a:"), std::string::npos);
  EXPECT_NE(error_reading("[1, 2]").find("not a JSON object"), std::string::npos);
  EXPECT_EQ(read_experiment("/no/such/experiment.json").status().code(), StatusCode::kNotFound);
  EXPECT_NE(error_reading(R"({"vary": "camera"})").find("vary: 'camera' is not one of: all, capture, deployment"), std::string::npos);
  EXPECT_NE(error_reading(R"({"deployment": "decode:gif"})").find("e.json: deployment:"), std::string::npos);
  EXPECT_NE(error_reading(R"({"repeats": 0})").find("repeats: not a whole number in 1..100"), std::string::npos);
}

TEST(StabilityExperiment, VaryingTheCaptureSharesOneDeploymentAndInference) {
  testing::TempDir dir;
  testing::write_text(dir.file("e.json"), R"({"fleet": "phones", "vary": "capture",
      "deployment": "decode:opencv|resize:opencv,area,model|infer:precision=fp32"})");
  const auto experiment = read_experiment(dir.file("e.json")).value();
  const auto environments = experiment_environments(experiment, true).value();
  const auto phones = read_fleet("phones").value();
  ASSERT_EQ(environments.size(), phones.size());
  for (std::size_t i = 0; i < phones.size(); ++i) {
    EXPECT_EQ(environments[i].name, phones[i].name);
    EXPECT_EQ(environment_spec(environments[i]),
              pipeline_to_string(split_capture(phones[i].environment.pipeline).capture) +
                  "|decode:opencv|resize:opencv,area,model");  // fp32 libtorch: the default setting
  }
}

TEST(StabilityExperiment, VaryingTheDeploymentSharesOneCaptureAndKeepsEachDevicesInference) {
  StabilityExperiment experiment;
  experiment.fleet = "builtin";
  experiment.vary = FleetPart::kDeployment;
  experiment.capture = parse_environment("capture", "encode:jpeg,quality=90").value();
  const auto environments = experiment_environments(experiment, true).value();
  const auto fleet = read_fleet("builtin").value();
  for (std::size_t i = 0; i < fleet.size(); ++i) {
    const auto& pipeline = environments[i].environment.pipeline;
    EXPECT_EQ(stage_to_string(pipeline.stages.front()), "encode:jpeg,quality=90");
    EXPECT_EQ(pipeline_to_string(split_capture(pipeline).deployment),
              pipeline_to_string(split_capture(fleet[i].environment.pipeline).deployment));
    EXPECT_EQ(inference_setting_to_string(environments[i].environment.inference),
              inference_setting_to_string(fleet[i].environment.inference));
  }
}

TEST(StabilityExperiment, ACommonIspKeepsEachPhonesSensorAndDevelopsItsRawAlike) {
  StabilityExperiment experiment;
  experiment.fleet = "phones";
  experiment.vary = FleetPart::kCapture;
  experiment.common_isp = parse_common_isp("camera:libraw,demosaic=dht,wb=grayworld").value();
  const auto environments = experiment_environments(experiment, true).value();
  const auto phones = read_fleet("phones").value();
  for (std::size_t i = 0; i < phones.size(); ++i) {
    const auto& camera = std::get<CameraStage>(environments[i].environment.pipeline.stages[1]).options;
    const auto& own = std::get<CameraStage>(phones[i].environment.pipeline.stages[1]).options;
    EXPECT_EQ(camera.isp, IspEngine::kLibRaw);
    EXPECT_EQ(camera.demosaic, "dht");
    EXPECT_EQ(camera.sensor, own.sensor);
    EXPECT_EQ(camera.shot_noise, own.shot_noise);
    EXPECT_EQ(camera.seed, own.seed);
  }
  EXPECT_NE(parse_common_isp("encode:jpeg").status().message().find("is not a camera stage"), std::string::npos);
  EXPECT_NE(error_reading(R"({"common_isp": "camera:gimp"})").find("e.json: common_isp:"), std::string::npos);
}

TEST(StabilityExperiment, RepeatsAreSessionsWithOtherScreenAndNoiseSeeds) {
  StabilityExperiment experiment;
  experiment.fleet = "phones";
  experiment.vary = FleetPart::kCapture;
  experiment.repeats = 3;
  const auto environments = experiment_environments(experiment, true).value();
  ASSERT_EQ(environments.size(), 15u);
  EXPECT_EQ(environments[0].name, "galaxy-s10/r1");
  EXPECT_EQ(environments[2].name, "galaxy-s10/r3");
  EXPECT_EQ(environment_source(environments[2].name), "galaxy-s10");  // per_source = per phone
  const auto& first = environments[0].environment.pipeline.stages;
  const auto& third = environments[2].environment.pipeline.stages;
  EXPECT_EQ(std::get<ScreenStage>(third[0]).options.seed, std::get<ScreenStage>(first[0]).options.seed + 2000);
  EXPECT_EQ(std::get<CameraStage>(third[1]).options.seed, std::get<CameraStage>(first[1]).options.seed + 2000);
  EXPECT_EQ(stage_to_string(third[2]), stage_to_string(first[2]));  // the same codec
}

TEST(StabilityExperiment, FleetThenAxesThenNamedEnvironmentsInThatOrder) {
  StabilityExperiment experiment;
  experiment.fleet = "builtin";
  experiment.axes = {"precision"};
  experiment.environments = {parse_environment("mine=decode:opencv").value()};
  const auto environments = experiment_environments(experiment, true).value();
  const auto fleet = read_fleet("builtin").value();
  ASSERT_GT(environments.size(), fleet.size() + 1);
  EXPECT_EQ(environments.front().name, fleet.front().name);
  // A device's environment is the one its profile holds, not a re-parsed copy.
  EXPECT_EQ(environment_spec(environments.front()), environment_spec({"", fleet.front().environment}));
  EXPECT_EQ(environment_source(environments[fleet.size()].name), "precision");
  EXPECT_EQ(environments.back().name, "mine");
}

TEST(StabilityExperiment, ANameGivenTwiceAndTooFewEnvironmentsAreRefused) {
  StabilityExperiment twice;
  twice.environments = {parse_environment("a=decode:opencv").value(), parse_environment("a=decode:turbojpeg").value()};
  EXPECT_NE(experiment_environments(twice, true).status().message().find("'a' is given twice"), std::string::npos);
  StabilityExperiment one;
  one.environments = {parse_environment("a=decode:opencv").value()};
  EXPECT_NE(experiment_environments(one, true).status().message().find("at least two"), std::string::npos);
}

}  // namespace
}  // namespace edgefleet
