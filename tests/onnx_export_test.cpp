// ONNX copies written from C++: for each graph pattern a real model has, OpenCV DNN running
// the export gives libtorch's logits (at batch 1 and at a larger batch when the batch is
// free); computed paddings and reshapes are specialised for the card's input; operations
// without an ONNX form are refused by name, and the file is not left behind.
#include <gtest/gtest.h>

#include <filesystem>

#include "edgefleet/classifier.h"
#include "edgefleet/onnx_export.h"
#include "scripted_nets.h"
#include "test_support.h"

namespace edgefleet {
namespace {

using testing::write_tiny_model;

// A TF-style "same" padding computed from the activation's size (as MobileNetV1 ports from
// TensorFlow have it), a hard-swish, an average pooling and a flatten by the batch size.
Module computed_padding_net() {
  Module m = module("ComputedPaddingNet");
  conv_weight(m, "c1", 6, 3, 3, 1);
  m.register_parameter("fc_w", torch::randn({4, 6 * 2 * 2}) * 0.3, false);
  m.define(R"(
def forward(self, x):
  ih = x.size(2)
  iw = x.size(3)
  ph = max((ih - 1) // 2 * 2 + 3 - ih, 0)
  pw = max((iw - 1) // 2 * 2 + 3 - iw, 0)
  x = torch.constant_pad_nd(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2], 0.0)
  a = torch.hardswish(torch.conv2d(x, self.c1_w, self.c1_b, [2, 2], [0, 0], [1, 1], 1))
  a = torch.avg_pool2d(a, [2, 2], [2, 2], [0, 0], False, True, None)
  return torch.linear(a.view(a.size(0), -1), self.fc_w, None)
)");
  return m;
}

// Adaptive max pooling (which also returns indices, unused) to 2x2, then flatten into linear.
Module adaptive_max_net() {
  Module m = module("AdaptiveMaxNet");
  conv_weight(m, "c1", 6, 3, 3, 1);
  m.register_parameter("fc_w", torch::randn({4, 6 * 2 * 2}) * 0.3, false);
  m.define(R"(
def forward(self, x):
  a = torch.relu(torch.conv2d(x, self.c1_w, self.c1_b, [1, 1], [1, 1], [1, 1], 1))
  p, i = torch.adaptive_max_pool2d(a, [2, 2])
  return torch.linear(torch.flatten(p, 1), self.fc_w, None)
)");
  return m;
}

torch::Tensor torch_logits(Module m, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  m.eval();
  return m.forward({x}).toTensor();
}

void expect_export_matches(Module m, const std::string& name, int classes) {
  testing::TempDir dir;
  const ModelCard card = save_scripted_classifier(m, dir.path(), name, classes);
  auto exported = export_onnx(card, dir.file(name + ".onnx"));
  ASSERT_TRUE(exported) << name << ": " << exported.status().to_string();
  EXPECT_LT(exported->check.max_relative_error, 1e-4) << name;
  EXPECT_EQ(exported->check.top1_agreement, 1.0) << name;
  EXPECT_TRUE(exported->dynamic_batch) << name;
  // The card written beside it loads through OpenCV DNN and runs a batch of 3 as libtorch does.
  const ModelCard onnx = read_card(exported->card_path).value();
  EXPECT_EQ(onnx.format, ModelFormat::kOnnx);
  auto classifier = load_classifier(onnx);
  ASSERT_TRUE(classifier) << classifier.status().to_string();
  torch::manual_seed(7);
  const torch::Tensor x = torch::rand({3, 3, 8, 8});
  auto got = (*classifier)->infer(x.data_ptr<float>(), 3);
  ASSERT_TRUE(got) << got.status().to_string();
  const torch::Tensor want = torch_logits(m, x);
  const torch::Tensor ours = torch::from_blob(got->data(), {3, classes}).clone();
  EXPECT_LT((ours - want).abs().max().item<double>(), 1e-4 * std::max(1.0, want.abs().max().item<double>())) << name;
}

TEST(OnnxExport, ResidualAdditionGivesTheSameLogits) { expect_export_matches(residual_net(), "residual", 5); }
TEST(OnnxExport, ConcatenationGivesTheSameLogits) { expect_export_matches(fire_net(), "fire", 5); }
TEST(OnnxExport, DepthwiseChainGivesTheSameLogits) { expect_export_matches(depthwise_net(), "depthwise", 4); }
TEST(OnnxExport, SplitGivesTheSameLogits) { expect_export_matches(split_net(), "split", 3); }
TEST(OnnxExport, NormalisationAndSqueezeExcitationGiveTheSameLogits) { expect_export_matches(normalised_se_net(), "se", 4); }
TEST(OnnxExport, ComputedPaddingAndBatchReshapeAreSpecialised) { expect_export_matches(computed_padding_net(), "tfpad", 4); }
TEST(OnnxExport, AdaptiveMaxPoolingWithUnusedIndicesGivesTheSameLogits) { expect_export_matches(adaptive_max_net(), "amax", 4); }

TEST(OnnxExport, ZooModelGivesTheSameLogits) {
  testing::TempDir dir;
  const ModelCard card = write_tiny_model(dir.path());
  auto exported = export_onnx(card, dir.file("tiny.onnx"));
  ASSERT_TRUE(exported) << exported.status().to_string();
  EXPECT_LT(exported->check.max_relative_error, 1e-4);
  EXPECT_EQ(exported->card.provenance["exported_from"], card.file);
  EXPECT_FALSE(exported->card.accuracy.has_value());  // measured, not inherited
}

TEST(OnnxExport, UnknownOperationIsRefusedByNameAndLeavesNoFile) {
  Module m = module("GeluNet");
  conv_weight(m, "c1", 4, 3, 3, 1);
  m.define(R"(
def forward(self, x):
  a = torch.gelu(torch.conv2d(x, self.c1_w, self.c1_b, [1, 1], [1, 1], [1, 1], 1))
  return torch.mean(a, [2, 3])
)");
  testing::TempDir dir;
  const ModelCard card = save_scripted_classifier(m, dir.path(), "gelu", 4);
  auto exported = export_onnx(card, dir.file("gelu.onnx"));
  ASSERT_FALSE(exported);
  EXPECT_EQ(exported.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(exported.status().message().find("aten::gelu"), std::string::npos) << exported.status().message();
  EXPECT_FALSE(std::filesystem::exists(dir.file("gelu.onnx")));
}

TEST(OnnxExport, RefusesOnnxCardsAndOtherExtensions) {
  testing::TempDir dir;
  const ModelCard card = write_tiny_model(dir.path());
  auto bad_path = export_onnx(card, dir.file("tiny.pb"));
  ASSERT_FALSE(bad_path);
  EXPECT_EQ(bad_path.status().code(), StatusCode::kInvalidArgument);
  auto exported = export_onnx(card, dir.file("tiny.onnx"));
  ASSERT_TRUE(exported) << exported.status().to_string();
  auto again = export_onnx(exported->card, dir.file("again.onnx"));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.status().code(), StatusCode::kInvalidArgument);
}

// The instability paper's model, from ../shared (skipped when absent): torchvision's graph with
// its input-rank check, fixed paddings and flatten.
TEST(OnnxExport, SharedMobileNetV2GivesTheSameLogits) {
  const std::string path = std::string(EDGEFLEET_SOURCE_DIR) + "/../shared/imagenet/models/mobilenet_v2_1.0.json";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no " << path;
  testing::TempDir dir;
  auto card = read_card(path).value();
  OnnxExportOptions options;
  options.check_inputs = 2;
  auto exported = export_onnx(card, dir.file("mobilenet_v2.onnx"), options);
  ASSERT_TRUE(exported) << exported.status().to_string();
  EXPECT_LT(exported->check.max_relative_error, 1e-4);
}

}  // namespace
}  // namespace edgefleet
