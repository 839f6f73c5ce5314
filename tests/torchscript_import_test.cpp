// Importing plain TorchScript classifiers (no ArchSpec) into zoo modules: the structure read
// from the graph, the outputs kept, the cost model and pruning applicable, and clear refusals.
#include <gtest/gtest.h>

#include "model/torchscript_cost.h"
#include "edgefleet/arch_cost.h"
#include "port/channel_pruning.h"
#include "zoo/torchscript_import.h"

namespace edgefleet {
namespace {

using torch::jit::Module;

// Modules shaped like torch.nn's scripted ones: the type name, parameters and constants the
// importer reads, and a forward that does what torch.nn's does.
Module conv2d(int in, int out, int kernel, int stride, int padding, int groups, bool bias, int seed) {
  Module m("Conv2d");
  torch::manual_seed(seed);
  m.register_parameter("weight", torch::randn({out, in / groups, kernel, kernel}) * 0.3, false);
  if (bias) m.register_parameter("bias", torch::randn({out}) * 0.1, false);
  m.type()->addConstant("kernel_size", c10::ivalue::Tuple::create({kernel, kernel}));
  m.type()->addConstant("stride", c10::ivalue::Tuple::create({stride, stride}));
  m.type()->addConstant("padding", c10::ivalue::Tuple::create({padding, padding}));
  m.type()->addConstant("dilation", c10::ivalue::Tuple::create({1, 1}));
  m.type()->addConstant("groups", groups);
  const std::string b = bias ? "self.bias" : "None";
  // Scripted torch.nn modules have their constants inlined into the code, as here.
  const auto pair = [](int v) { return "[" + std::to_string(v) + ", " + std::to_string(v) + "]"; };
  m.define("def forward(self, x):\n  return torch.conv2d(x, self.weight, " + b + ", " + pair(stride) + ", " + pair(padding) + ", [1, 1], " +
           std::to_string(groups) + ")\n");
  return m;
}

Module batch_norm(int channels, double eps, int seed) {
  Module m("BatchNorm2d");
  torch::manual_seed(seed);
  m.register_parameter("weight", torch::rand({channels}) + 0.5, false);
  m.register_parameter("bias", torch::randn({channels}) * 0.1, false);
  m.register_buffer("running_mean", torch::randn({channels}) * 0.1);
  m.register_buffer("running_var", torch::rand({channels}) + 0.5);
  m.type()->addConstant("eps", eps);
  m.define("def forward(self, x):\n  return torch.batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var, False, 0.1, " + std::to_string(eps) + ", False)\n");
  return m;
}

Module relu() {
  Module m("ReLU");
  m.define("def forward(self, x):\n  return torch.relu(x)\n");
  return m;
}

Module max_pool() {
  Module m("MaxPool2d");
  m.type()->addConstant("kernel_size", 2);
  m.type()->addConstant("stride", 2);
  m.type()->addConstant("padding", 0);
  m.type()->addConstant("dilation", 1);
  m.type()->addConstant("ceil_mode", true);
  m.define("def forward(self, x):\n  return torch.max_pool2d(x, [2, 2], [2, 2], [0, 0], [1, 1], True)\n");
  return m;
}

// A Keras-converted conv-bn-activation block: TF "same" padding when `sym` is false.
Module conv_bn_act(Module conv, Module bn, bool sym, int total_pad) {
  Module m("ConvBNAct");
  m.register_module("conv", conv);
  m.register_module("bn", bn);
  m.register_attribute("sym", c10::BoolType::get(), sym);
  m.register_attribute("act", c10::StringType::get(), std::string("relu6"));
  const std::string pad = std::to_string(total_pad / 2) + ", " + std::to_string(total_pad - total_pad / 2);
  m.define("def forward(self, x):\n  x = torch.constant_pad_nd(x, [" + pad + ", " + pad + "], 0.0)\n  return torch.clamp(self.bn.forward(self.conv.forward(x)), 0.0, 6.0)\n");
  return m;
}

Module affine(std::vector<float> scale, std::vector<float> shift) {
  Module m("Affine");
  const auto channels = static_cast<std::int64_t>(scale.size());
  m.register_buffer("scale", torch::tensor(scale).view({1, channels, 1, 1}));
  m.register_buffer("shift", torch::tensor(shift).view({1, channels, 1, 1}));
  m.define("def forward(self, x):\n  return x * self.scale + self.shift\n");
  return m;
}

Module sequential(const std::vector<Module>& children) {
  Module m("Sequential");
  std::string source = "def forward(self, x):\n";
  for (std::size_t i = 0; i < children.size(); ++i) {
    m.register_module("m" + std::to_string(i), children[i]);
    source += "  x = self.m" + std::to_string(i) + ".forward(x)\n";
  }
  m.define(source + "  return x\n");
  return m;
}

// norm -> [same-padded conv-bn-relu6 /2] -> [depthwise 3x3 + bn + relu] -> maxpool ->
// [1x1 conv with bias + bn + relu] -> global mean -> 1x1 conv classifier, as the ImageNet
// models in ../shared/imagenet are laid out.
Module sequential_classifier(std::vector<float> scale = {2, 2, 2}, std::vector<float> shift = {-1, -1, -1}) {
  Module features = sequential({conv_bn_act(conv2d(3, 8, 3, 2, 0, 1, false, 1), batch_norm(8, 1e-3, 2), false, 1),
                                conv2d(8, 8, 3, 1, 1, 8, false, 3), batch_norm(8, 1e-3, 4), relu(), max_pool(),
                                conv2d(8, 16, 1, 1, 0, 1, true, 5), batch_norm(16, 1e-3, 6), relu()});
  Module m("Classifier");
  m.register_module("norm", affine(std::move(scale), std::move(shift)));
  m.register_module("features", features);
  m.register_module("head", conv2d(16, 10, 1, 1, 0, 1, true, 7));
  m.define(
      "def forward(self, x):\n"
      "  x = self.features.forward(self.norm.forward(x))\n"
      "  x = torch.mean(x, [2, 3], True)\n"
      "  return torch.flatten(self.head.forward(x), 1)\n");
  m.eval();
  return m;
}

TEST(TorchScriptImport, ASequentialClassifierKeepsItsLogitsAndStructure) {
  Module source = sequential_classifier();
  auto imported = import_sequential_classifier(source, 32);
  ASSERT_TRUE(imported.has_value()) << imported.status().to_string();
  const ArchSpec& spec = imported->spec;
  ASSERT_EQ(spec.layers.size(), 4u);
  EXPECT_EQ(spec.layers[0].padding, "same");
  EXPECT_EQ(spec.layers[0].stride, 2);
  EXPECT_TRUE(spec.layers[1].depthwise);
  EXPECT_EQ(spec.layers[2].kind, LayerKind::kMaxPool);
  EXPECT_EQ(spec.layers[3].out, 16);
  EXPECT_EQ(spec.classes, 10);
  EXPECT_DOUBLE_EQ(spec.bn_eps, 1e-3);
  EXPECT_FLOAT_EQ(spec.mean, 0.5f);
  EXPECT_FLOAT_EQ(spec.std, 0.5f);
  EXPECT_LT(imported->max_logit_difference, 1e-4);

  torch::NoGradGuard no_grad;
  const auto x = torch::rand({3, 3, 32, 32});
  const auto expected = source.forward({x}).toTensor();
  const auto got = imported->module.forward({x}).toTensor();
  EXPECT_TRUE(torch::allclose(expected, got, 1e-4, 1e-4));
}

TEST(TorchScriptImport, CostModelCountsTheSourceModelsMacs) {
  Module source = sequential_classifier();
  auto imported = import_sequential_classifier(source, 32);
  ASSERT_TRUE(imported.has_value()) << imported.status().to_string();
  const auto traced = torchscript_cost(source, {1, 3, 32, 32}).value();  // counts convs and linears of the graph
  // The head: a 1x1 conv on the pooled 1x1 map, the same MACs as the linear layer.
  EXPECT_EQ(arch_cost(imported->spec).macs, traced.macs);
}

TEST(TorchScriptImport, ImportedModelsCanBePrunedAndStillRun) {
  auto imported = import_sequential_classifier(sequential_classifier(), 32);
  ASSERT_TRUE(imported.has_value()) << imported.status().to_string();
  PrunableModel model{imported->spec, imported->module};
  std::map<std::string, std::vector<std::int64_t>> keep;
  for (const auto& [group, width] : group_widths(model.spec)) {
    std::vector<std::int64_t> channels;
    for (int c = 0; c < width; c += 2) channels.push_back(c);
    keep[group] = channels;
  }
  auto pruned = prune_channels(model, keep);
  ASSERT_TRUE(pruned.has_value()) << pruned.status().to_string();
  EXPECT_LT(arch_cost(pruned->spec).macs, arch_cost(model.spec).macs / 2);
  torch::NoGradGuard no_grad;
  pruned->module.eval();
  EXPECT_EQ(pruned->module.forward({torch::rand({1, 3, 32, 32})}).toTensor().sizes(), (std::vector<std::int64_t>{1, 10}));
}

TEST(TorchScriptImport, ConcatenationIsRefusedNamingTheOperation) {
  Module branchy("Fire");
  branchy.register_module("a", conv2d(3, 4, 1, 1, 0, 1, false, 1));
  branchy.register_module("b", conv2d(3, 4, 1, 1, 0, 1, false, 2));
  branchy.define("def forward(self, x):\n  return torch.cat([self.a.forward(x), self.b.forward(x)], 1)\n");
  auto imported = import_sequential_classifier(branchy, 32);
  ASSERT_FALSE(imported.has_value());
  EXPECT_EQ(imported.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(imported.status().message().find("aten::cat"), std::string::npos) << imported.status().message();
  EXPECT_NE(imported.status().message().find("Fire"), std::string::npos) << imported.status().message();
}

TEST(TorchScriptImport, PerChannelNormalisationIsRefused) {
  auto imported = import_sequential_classifier(sequential_classifier({1, 2, 3}, {0, 0, 0}), 32);
  ASSERT_FALSE(imported.has_value());
  EXPECT_NE(imported.status().message().find("per-channel"), std::string::npos) << imported.status().message();
}

TEST(TorchScriptImport, AConvolutionWithoutBatchNormIsRefused) {
  Module m("Plain");
  m.register_module("features", sequential({conv2d(3, 8, 3, 1, 1, 1, false, 1), relu()}));
  m.register_module("head", conv2d(8, 10, 1, 1, 0, 1, true, 2));
  m.define("def forward(self, x):\n  return torch.mean(self.head.forward(self.features.forward(x)), [2, 3])\n");
  auto imported = import_sequential_classifier(m, 16);
  ASSERT_FALSE(imported.has_value());
  EXPECT_NE(imported.status().message().find("without batch norm"), std::string::npos) << imported.status().message();
}

}  // namespace
}  // namespace edgefleet
