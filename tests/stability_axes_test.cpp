#include "edgefleet/stability_axes.h"

#include <gtest/gtest.h>

#include <set>

namespace edgefleet {
namespace {

TEST(StabilityAxes, EveryAxisVariesOneSourceFromItsBaselineForBothKindsOfData) {
  for (const bool encoded : {true, false}) {
    for (const auto& axis : stability_axis_names()) {
      const auto environments = axis_environments(axis, encoded).value();
      ASSERT_GE(environments.size(), 2u) << axis;
      std::set<std::string> specs;
      for (const auto& e : environments) {
        EXPECT_EQ(environment_source(e.name), axis);
        specs.insert(environment_spec(e));
        // A dataset of files starts by decoding it; pixels never need a decoder first.
        const std::string spec = environment_spec(e);
        if (encoded) {
          EXPECT_EQ(spec.rfind("decode:", 0), 0u) << spec;
        } else {
          EXPECT_NE(spec.rfind("decode:", 0), 0u) << spec;
        }
      }
      EXPECT_EQ(specs.size(), environments.size()) << axis << ": two variants are the same environment";
    }
  }
}

TEST(StabilityAxes, SensorNoiseRedrawsOnlyTheNoise) {
  const auto environments = axis_environments("sensor-noise", true).value();
  for (const auto& e : environments) {
    std::string spec = environment_spec(e);
    const auto seed = spec.find("seed=");
    ASSERT_NE(seed, std::string::npos) << spec;
    spec.erase(seed, spec.find_first_of(",|", seed) - seed);
    EXPECT_EQ(spec, [&] {
      std::string first = environment_spec(environments[0]);
      first.erase(first.find("seed="), first.find_first_of(",|", first.find("seed=")) - first.find("seed="));
      return first;
    }());
  }
}

TEST(StabilityAxes, AnUnknownAxisListsTheKnownOnes) {
  const auto status = axis_environments("weather", true).status();
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("sensor-noise"), std::string::npos);
  EXPECT_EQ(environment_source("decoder/opencv"), "decoder");
  EXPECT_EQ(environment_source("galaxy-s10"), "");
}

TEST(StabilityEnvironment, TheInferenceSettingIsTheLastStage) {
  const auto e = parse_environment("phone=decode:turbojpeg|infer:precision=fp16,threads=1").value();
  EXPECT_EQ(e.environment.pipeline.stages.size(), 1u);
  EXPECT_EQ(e.environment.inference.precision, Precision::kFp16);
  EXPECT_EQ(environment_spec(e), "decode:turbojpeg|infer:precision=fp16,threads=1");
  EXPECT_EQ(environment_spec(parse_environment("x=infer:precision=bf16").value()), "infer:precision=bf16");
  EXPECT_EQ(parse_environment("x=decode:turbojpeg|infer:precision=fp8").status().code(), StatusCode::kInvalidArgument);
  // Anywhere but last it is not a pipeline stage.
  EXPECT_EQ(parse_environment("x=infer:precision=fp16|decode:turbojpeg").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace edgefleet
