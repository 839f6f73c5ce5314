#include "edgefleet/inference_setting.h"

#include <gtest/gtest.h>
#include <torch/script.h>

#include <algorithm>
#include <cmath>

#include "edgefleet/classifier.h"
#include "edgefleet/sha256.h"
#include "test_support.h"

namespace edgefleet {
namespace {

using testing::TempDir;

TEST(InferenceSetting, ParsesAndPrintsCanonically) {
  const auto setting = parse_inference_setting(" precision=int8 , ceil=flip,threads=1").value();
  EXPECT_EQ(setting.precision, Precision::kInt8PerChannel);
  EXPECT_EQ(setting.ceil_mode, CeilMode::kFlip);
  EXPECT_EQ(setting.threads, 1);
  EXPECT_EQ(inference_setting_to_string(setting), "precision=int8-channel,ceil=flip,threads=1");
  EXPECT_EQ(parse_inference_setting(inference_setting_to_string(setting)).value(), setting);
  EXPECT_EQ(inference_setting_to_string(parse_inference_setting("precision=fp32,engine=libtorch").value()), "");
}

TEST(InferenceSetting, ErrorsNameTheKeyAndTheAllowedValues) {
  const auto precision = parse_inference_setting("precision=fp8");
  ASSERT_FALSE(precision);
  EXPECT_NE(precision.status().message().find("fp16"), std::string::npos) << precision.status().message();
  EXPECT_EQ(parse_inference_setting("speed=fast").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(parse_inference_setting("threads=-2").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(parse_inference_setting("threads").status().code(), StatusCode::kInvalidArgument);
  // OpenCV DNN runs the ONNX file as exported.
  EXPECT_EQ(parse_inference_setting("engine=opencv-dnn,precision=fp16").status().code(), StatusCode::kInvalidArgument);
}

std::vector<float> ramp_batch(int n) {
  std::vector<float> batch(n * 28 * 28);
  for (std::size_t i = 0; i < batch.size(); ++i) batch[i] = static_cast<float>((i * 37) % 101) / 100.0f;
  return batch;
}

std::vector<float> logits_of(const ModelCard& card, const LoadOptions& options, const std::vector<float>& batch) {
  auto model = load_classifier(card, options).value();
  return model->infer(batch.data(), static_cast<int>(batch.size() / 784)).value();
}

TEST(SimulatedPrecision, HalfPrecisionMovesLogitsByRoundingOnly) {
  TempDir dir;
  const ModelCard card = testing::write_tiny_model(dir.path());
  const auto batch = ramp_batch(4);
  const auto fp32 = logits_of(card, {}, batch);
  LoadOptions fp16;
  fp16.precision = Precision::kFp16;
  auto model = load_classifier(card, fp16).value();
  EXPECT_EQ(model->engine(), "libtorch (fp16 emulated)");
  const auto half = model->infer(batch.data(), 4).value();
  double worst = 0.0;
  for (std::size_t i = 0; i < fp32.size(); ++i) {
    worst = std::max(worst, std::abs(static_cast<double>(half[i]) - fp32[i]));
    // Every logit is a half-precision number: rounding it to half changes nothing.
    EXPECT_EQ(static_cast<float>(c10::Half(half[i])), half[i]);
  }
  EXPECT_GT(worst, 0.0);
  EXPECT_LT(worst, 0.05);
}

TEST(SimulatedPrecision, Int8LogitsLieOnOneQuantisationGrid) {
  TempDir dir;
  const ModelCard card = testing::write_tiny_model(dir.path());
  LoadOptions int8;
  int8.precision = Precision::kInt8PerTensor;
  EXPECT_EQ(load_classifier(card, int8).status().code(), StatusCode::kInvalidArgument);  // no calibration
  int8.calibration = ramp_batch(8);
  const auto logits = logits_of(card, int8, ramp_batch(4));
  const auto fp32 = logits_of(card, {}, ramp_batch(4));
  EXPECT_NE(logits, fp32);
  // The output is fake-quantised: all logits are zero point + integer multiples of one step.
  std::vector<float> sorted = logits;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  ASSERT_GE(sorted.size(), 3u);
  double step = 1e9;
  for (std::size_t i = 1; i < sorted.size(); ++i) step = std::min(step, static_cast<double>(sorted[i] - sorted[i - 1]));
  for (std::size_t i = 1; i < sorted.size(); ++i) {
    const double multiple = (sorted[i] - sorted[0]) / step;
    EXPECT_NEAR(multiple, std::round(multiple), 1e-2) << i;
  }
}

// A model whose answer depends on pooling ceil mode: 5x5 max-pooled 2x2 is 2x2 (floor) or
// 3x3 (ceil), and the logits sum the pooled map per channel.
ModelCard write_pooling_model(const std::string& dir) {
  torch::jit::Module module("pooling");
  module.define(R"(
def forward(self, x):
    y = torch.max_pool2d(x, [2, 2], [2, 2], [0, 0], [1, 1], False)
    return torch.sum(y, [2, 3])
)");
  const std::string pt = dir + "/pooling.pt";
  module.save(pt);
  ModelCard card;
  card.name = "pooling";
  card.file = "pooling.pt";
  card.format = ModelFormat::kTorchScript;
  card.sha256 = sha256_file(pt).value();
  card.input.color = InputColor::kRgb;
  card.input.height = card.input.width = 5;
  card.input.resize = ResizeRule::kExact;
  card.classes = 3;
  EXPECT_TRUE(write_card(card, dir + "/pooling.json").is_ok());
  return read_card(dir + "/pooling.json").value();
}

TEST(SimulatedCeilMode, FlippingCeilModeChangesWhatAnOddSizedPoolSees) {
  TempDir dir;
  const ModelCard card = write_pooling_model(dir.path());
  std::vector<float> input(3 * 25, 1.0f);
  LoadOptions flip;
  flip.ceil_mode = CeilMode::kFlip;
  auto flipped = load_classifier(card, flip).value();
  EXPECT_NE(flipped->engine().find("ceil mode changed on 1 pooling layers"), std::string::npos) << flipped->engine();
  EXPECT_EQ(load_classifier(card).value()->infer(input.data(), 1).value(), std::vector<float>(3, 4.0f));
  EXPECT_EQ(flipped->infer(input.data(), 1).value(), std::vector<float>(3, 9.0f));
  LoadOptions off;
  off.ceil_mode = CeilMode::kOff;  // already off: nothing to change
  EXPECT_NE(load_classifier(card, off).value()->engine().find("changed on 0 pooling layers"), std::string::npos);
}

TEST(SimulatedSettings, OpencvDnnRefusesThem) {
  const std::string dir = std::string(EDGEFLEET_SOURCE_DIR) + "/models/fashion-mnist";
  auto card = read_card(dir + "/cnn_tiny.onnx.json");
  if (!card) GTEST_SKIP() << "zoo files not present";
  LoadOptions fp16;
  fp16.precision = Precision::kFp16;
  EXPECT_EQ(load_classifier(*card, fp16).status().code(), StatusCode::kUnsupported);
}

}  // namespace
}  // namespace edgefleet
