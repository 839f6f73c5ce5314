#include "edgefleet/classifier.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "edgefleet/latency.h"
#include "edgefleet/sha256.h"
#include "test_support.h"

namespace edgefleet {
using testing::TempDir;

TEST(TorchScriptClassifier, MapsABatchToClassLogits) {
  TempDir dir;
  const ModelCard card = testing::write_tiny_model(dir.path());
  auto model = load_classifier(card).value();
  EXPECT_EQ(model->engine(), "libtorch");
  std::vector<float> batch(4 * 28 * 28, 0.25f);
  auto logits = model->infer(batch.data(), 4).value();
  ASSERT_EQ(logits.size(), 40u);
  // The same input gives the same logits in every row.
  for (int c = 0; c < 10; ++c) EXPECT_FLOAT_EQ(logits[c], logits[30 + c]);
}

TEST(TorchScriptClassifier, CountsCostFromTheModelItself) {
  TempDir dir;
  const ModelCard card = testing::write_tiny_model(dir.path());
  auto model = load_classifier(card).value();
  const auto cost = model->cost().value();
  // cnn_tiny: convs 1->8 @28x28, 8->16 @14x14, 16->32 @7x7, classifier 32->10.
  EXPECT_EQ(cost.macs, 8 * 9 * 784 + 8 * 16 * 9 * 196 + 16 * 32 * 9 * 49 + 320);
  EXPECT_EQ(cost.params, (72 + 16) + (1152 + 32) + (4608 + 64) + 330);
}

// libtorch 1.13's optimize_for_inference clamps only part of a ReLU6 whose channels MKLDNN
// pads (8 of 16 here), with an "output ... was resized" warning: the classifier must give the
// plain frozen graph's logits instead.
TEST(TorchScriptClassifier, GivesTheFrozenLogitsWhereLibtorchsOptimisationIsWrong) {
  TempDir dir;
  torch::manual_seed(3);
  torch::jit::Module module("Relu6Net");
  module.register_parameter("w1", torch::randn({8, 1, 3, 3}), false);
  module.register_parameter("b1", torch::rand({8}) * 4 - 1, false);
  module.register_parameter("w2", torch::randn({10, 8, 1, 1}), false);
  module.define(R"(
def forward(self, x):
    y = torch.hardtanh(torch.conv2d(x, self.w1, self.b1, 1, 1), 0.0, 6.0)
    return torch.conv2d(y, self.w2).mean([2, 3])
)");
  module.eval();
  module.save(dir.file("relu6.pt"));
  ModelCard card = testing::write_tiny_model(dir.path());
  card.file = "relu6.pt";
  card.sha256 = sha256_file(dir.file("relu6.pt")).value();
  card.architecture_spec = nullptr;
  ASSERT_TRUE(write_card(card, dir.file("relu6.json")).is_ok());
  card = read_card(dir.file("relu6.json")).value();
  LoadOptions plain;
  plain.optimize = false;
  auto reference = load_classifier(card, plain).value();
  auto model = load_classifier(card).value();
  std::vector<float> batch(16 * 28 * 28);
  for (std::size_t i = 0; i < batch.size(); ++i) batch[i] = static_cast<float>((i * 37) % 101) / 101.0f * 8 - 4;
  for (int n : {1, 16}) {  // 16: past the batch size that may run the frozen graph anyway
    const auto expected = reference->infer(batch.data(), n).value();
    const auto got = model->infer(batch.data(), n).value();
    ASSERT_EQ(got.size(), expected.size());
    for (std::size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], expected[i], 1e-3) << "batch " << n << " logit " << i;
  }
}

TEST(TorchScriptClassifier, RejectsNonPositiveBatch) {
  TempDir dir;
  auto model = load_classifier(testing::write_tiny_model(dir.path())).value();
  std::vector<float> batch(784);
  EXPECT_EQ(model->infer(batch.data(), 0).status().code(), StatusCode::kInvalidArgument);
}

TEST(TorchScriptClassifier, CardWithWrongClassCountIsCaughtAtInference) {
  TempDir dir;
  ModelCard card = testing::write_tiny_model(dir.path());
  card.classes = 7;
  auto model = load_classifier(card).value();
  std::vector<float> batch(784);
  auto logits = model->infer(batch.data(), 1);
  EXPECT_EQ(logits.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(logits.status().message().find("expected [1, 7]"), std::string::npos);
}

TEST(LoadClassifier, ChangedFileFailsTheHashCheck) {
  TempDir dir;
  ModelCard card = testing::write_tiny_model(dir.path());
  card.sha256 = std::string(64, '0');
  auto model = load_classifier(card);
  EXPECT_EQ(model.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(model.status().message().find("differs from the card"), std::string::npos);
}

TEST(LoadClassifier, GarbageModelFileIsCorrupt) {
  TempDir dir;
  ModelCard card = testing::write_tiny_model(dir.path());
  testing::write_text(card.model_path(), "not a zip archive");
  card.sha256.clear();
  EXPECT_EQ(load_classifier(card).status().code(), StatusCode::kCorrupt);
}

TEST(LoadClassifier, MissingModelFileIsNotFound) {
  TempDir dir;
  ModelCard card = testing::write_tiny_model(dir.path());
  std::filesystem::remove(card.model_path());
  EXPECT_EQ(load_classifier(card).status().code(), StatusCode::kNotFound);
}

// The ONNX copy of the zoo's cheapest model, run by OpenCV DNN, agrees with libtorch.
TEST(OnnxClassifier, AgreesWithTorchScriptOnTheSameModel) {
  const std::string dir = std::string(EDGEFLEET_SOURCE_DIR) + "/models/fashion-mnist";
  auto torch_card = read_card(dir + "/cnn_tiny.json");
  auto onnx_card = read_card(dir + "/cnn_tiny.onnx.json");
  if (!torch_card || !onnx_card) GTEST_SKIP() << "zoo files not present";
  auto torch_model = load_classifier(*torch_card).value();
  auto onnx_model = load_classifier(*onnx_card).value();
  EXPECT_EQ(onnx_model->engine(), "opencv-dnn");
  std::vector<float> batch(2 * 784);
  for (std::size_t i = 0; i < batch.size(); ++i) batch[i] = static_cast<float>((i * 37) % 255) / 255.0f;
  auto a = torch_model->infer(batch.data(), 2).value();
  auto b = onnx_model->infer(batch.data(), 2).value();
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-3);
  EXPECT_GT(onnx_model->cost().value().macs, 0);
}

TEST(Latency, MeasuresPositiveTimes) {
  TempDir dir;
  auto model = load_classifier(testing::write_tiny_model(dir.path())).value();
  const auto stats = measure_latency(*model, 2, 1, 3).value();
  EXPECT_EQ(stats.runs, 3);
  EXPECT_GT(stats.median_ms, 0.0);
  EXPECT_LE(stats.min_ms, stats.median_ms);
  EXPECT_LE(stats.median_ms, stats.max_ms);
}

}  // namespace edgefleet
