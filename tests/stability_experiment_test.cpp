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
