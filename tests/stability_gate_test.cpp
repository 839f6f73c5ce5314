// The release gate: a rise beyond the margin and the sampling noise fails, noise does not.
#include "edgefleet/stability_gate.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace edgefleet {
namespace {

nlohmann::json summary(double instability, std::size_t images, nlohmann::json sources = nullptr) {
  nlohmann::json j{{"instability", instability}, {"images", images}};
  if (!sources.is_null()) j["per_source"] = sources;
  return j;
}

nlohmann::json source(const std::string& name, double instability, std::size_t images) {
  return {{"source", name}, {"instability", instability}, {"images", images}};
}

TEST(StabilityGate, TheSameFiguresPass) {
  const auto s = summary(0.15, 1000, {source("codec", 0.05, 1000)});
  auto result = check_release(s, s, {});
  ASSERT_TRUE(result.has_value()) << result.status().to_string();
  EXPECT_TRUE(result->passed);
  ASSERT_EQ(result->figures.size(), 2u);
  EXPECT_EQ(result->figures[1].name, "instability of codec");
}

TEST(StabilityGate, ARiseWithinTheSamplingNoisePasses) {
  // 2 points on 300 inputs: the one-sided 95% bound on the rise is below 0.
  auto result = check_release(summary(0.15, 300), summary(0.17, 300), {});
  ASSERT_TRUE(result.has_value());
  EXPECT_TRUE(result->passed);
  EXPECT_LT(result->figures[0].lower_bound, 0.0);
  EXPECT_NEAR(result->figures[0].increase, 0.02, 1e-12);
}

TEST(StabilityGate, AClearRiseFailsAndAMarginCanAbsorbIt) {
  // 10 points on 1,000 inputs: the bound is ~7 points.
  auto strict = check_release(summary(0.15, 1000), summary(0.25, 1000), {});
  ASSERT_TRUE(strict.has_value());
  EXPECT_FALSE(strict->passed);
  EXPECT_GT(strict->figures[0].lower_bound, 0.06);
  EXPECT_LT(strict->figures[0].lower_bound, 0.10);
  auto tolerant = check_release(summary(0.15, 1000), summary(0.25, 1000), {0.08, 0.95});
  ASSERT_TRUE(tolerant.has_value());
  EXPECT_TRUE(tolerant->passed);
}

TEST(StabilityGate, OneSourceRisingFailsTheGateAlone) {
  const auto before = summary(0.20, 2000, {source("codec", 0.02, 2000), source("resize", 0.10, 2000)});
  const auto after = summary(0.20, 2000, {source("codec", 0.12, 2000), source("resize", 0.10, 2000), source("isp", 0.3, 2000)});
  auto result = check_release(before, after, {});
  ASSERT_TRUE(result.has_value());
  EXPECT_FALSE(result->passed);
  EXPECT_FALSE(result->figures[0].failed);
  EXPECT_TRUE(result->figures[1].failed);  // codec
  EXPECT_FALSE(result->figures[2].failed);
  EXPECT_EQ(result->only_in_one, (std::vector<std::string>{"isp"}));
}

TEST(StabilityGate, MalformedSummariesAndOptionsAreRefusedByName) {
  auto missing = check_release(nlohmann::json{{"images", 10}}, summary(0.1, 10), {});
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("instability"), std::string::npos);
  EXPECT_EQ(check_release(summary(1.5, 10), summary(0.1, 10), {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(check_release(summary(0.1, 0), summary(0.1, 10), {}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(check_release(summary(0.1, 10), summary(0.1, 10), {0.0, 1.0}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(check_release(summary(0.1, 10), summary(0.1, 10), {-0.1, 0.95}).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace edgefleet
