#include "edgefleet/model_card.h"

#include <gtest/gtest.h>

#include "test_support.h"

namespace edgefleet {
using nlohmann::json;

namespace {
json minimal_card() {
  return json::parse(R"({"name": "m", "file": "m.pt", "classes": 10,
                         "input": {"color": "gray", "height": 28, "width": 28}})");
}
std::string error_of(const json& j) { return card_from_json(j, "card.json").status().message(); }
}  // namespace

TEST(ModelCard, MinimalCardGetsDefaults) {
  auto card = card_from_json(minimal_card(), "card.json").value();
  EXPECT_EQ(card.format, ModelFormat::kTorchScript);
  EXPECT_EQ(card.input.resize, ResizeRule::kExact);
  EXPECT_EQ(card.input.channels(), 1);
  EXPECT_FALSE(card.accuracy.has_value());
}

TEST(ModelCard, ImageNetSizedInputDefaultsToShorterSideAndCrop) {
  json j = minimal_card();
  j["input"] = {{"color", "RGB"}, {"height", 224}, {"width", 224}, {"range", {0, 1}}};
  auto card = card_from_json(j, "card.json").value();
  EXPECT_EQ(card.input.color, InputColor::kRgb);
  EXPECT_EQ(card.input.resize, ResizeRule::kShorterSide);
  EXPECT_EQ(card.input.resize_size, 256);
  EXPECT_EQ(card.input.interpolation, Interpolation::kBilinearAntialias);
}

TEST(ModelCard, ClassesFromOutputBlock) {
  json j = minimal_card();
  j.erase("classes");
  j["output"] = {{"classes", 1000}};
  EXPECT_EQ(card_from_json(j, "c").value().classes, 1000);
}

TEST(ModelCard, MissingNameIsReported) {
  json j = minimal_card();
  j.erase("name");
  EXPECT_EQ(error_of(j), "card.json: missing field 'name'");
}

TEST(ModelCard, UnknownColourNamesAllowedValues) {
  json j = minimal_card();
  j["input"]["color"] = "cmyk";
  EXPECT_EQ(error_of(j), "card.json: input.color 'cmyk' is not one of: gray, rgb, bgr");
}

TEST(ModelCard, WrongFieldTypeIsReported) {
  json j = minimal_card();
  j["input"]["height"] = "tall";
  EXPECT_EQ(error_of(j), "card.json: field 'input.height' has the wrong type (\"tall\")");
}

TEST(ModelCard, LabelCountMustMatchClasses) {
  json j = minimal_card();
  j["labels"] = {"a", "b"};
  EXPECT_EQ(error_of(j), "card.json: 2 labels for 10 classes");
}

TEST(ModelCard, AccuracyMustBeAFraction) {
  json j = minimal_card();
  j["accuracy"] = {{"top1", 91.2}};
  EXPECT_NE(error_of(j).find("fractions in [0,1]"), std::string::npos);
}

TEST(ModelCard, RoundTripKeepsUnknownFields) {
  testing::TempDir dir;
  json j = minimal_card();
  j["vendor_note"] = "keep me";
  auto card = card_from_json(j, "c").value();
  card.accuracy = AccuracyRecord{"fashion-mnist:test", 100, 0.9, 0.99};
  ASSERT_TRUE(write_card(card, dir.file("m.json")).is_ok());
  auto again = read_card(dir.file("m.json")).value();
  EXPECT_EQ(again.raw["vendor_note"], "keep me");
  EXPECT_DOUBLE_EQ(again.accuracy->top1, 0.9);
  EXPECT_EQ(again.model_path(), dir.file("m.pt"));
}

TEST(ModelCard, NotJsonIsInvalidArgument) {
  testing::TempDir dir;
  testing::write_text(dir.file("bad.json"), "{ not json");
  EXPECT_EQ(read_card(dir.file("bad.json")).status().to_string(), "invalid_argument: " + dir.file("bad.json") + ": not valid JSON");
}

TEST(ResolveModel, ModelFileWithoutCardSaysWhereTheCardShouldBe) {
  testing::TempDir dir;
  testing::write_text(dir.file("net.pt"), "x");
  auto card = resolve_model(dir.file("net.pt"));
  EXPECT_EQ(card.status().code(), StatusCode::kNotFound);
  EXPECT_NE(card.status().message().find("net.json"), std::string::npos);
}

TEST(ResolveModel, UnknownNameExplainsTheAcceptedForms) {
  auto card = resolve_model("no-such-model");
  EXPECT_EQ(card.status().code(), StatusCode::kNotFound);
  EXPECT_NE(card.status().message().find("edgefleet zoo list"), std::string::npos);
}

}  // namespace edgefleet
