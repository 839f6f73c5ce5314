// Channel dependencies read from any TorchScript graph, and physical pruning through them:
// for each pattern (residual add, concatenation, depthwise chain, split, input normalisation,
// squeeze-excitation, flatten into a linear layer), channels whose activations are zero can be
// removed without changing the logits; the cost at chosen widths is the pruned model's; and
// operations the analysis does not know are refused by name.
#include <gtest/gtest.h>

#include <filesystem>

#include "model/torchscript_cost.h"
#include "port/channel_graph.h"

namespace edgefleet {
namespace {

using torch::jit::Module;

// A module as scripted torch.nn has it: with the `training` flag train()/eval() set.
Module module(const std::string& name) {
  Module m(name);
  m.register_attribute("training", c10::BoolType::get(), false);
  return m;
}

// A batch norm as scripted torch.nn writes it (a submodule: parameters reached by paths).
Module batch_norm(int channels, int seed) {
  Module m = module("BatchNorm2d");
  torch::manual_seed(seed);
  m.register_parameter("weight", torch::rand({channels}) + 0.5, false);
  m.register_parameter("bias", torch::randn({channels}) * 0.1, false);
  m.register_buffer("running_mean", torch::randn({channels}) * 0.1);
  m.register_buffer("running_var", torch::rand({channels}) + 0.5);
  m.define(
      "def forward(self, x):\n"
      "  return torch.batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var, self.training, 0.1, 1e-5, False)\n");
  return m;
}

void conv_weight(Module& m, const std::string& name, int out, int in_per_group, int kernel, int seed, bool bias = true) {
  torch::manual_seed(seed);
  m.register_parameter(name + "_w", torch::randn({out, in_per_group, kernel, kernel}) * 0.3, false);
  if (bias) m.register_parameter(name + "_b", torch::randn({out}) * 0.1, false);
}

// conv -> bn -> relu -> conv -> bn, plus the block's input (a residual addition), -> relu ->
// global mean -> linear.
Module residual_net() {
  Module m = module("ResidualNet");
  conv_weight(m, "c1", 8, 3, 3, 1);
  m.register_module("bn1", batch_norm(8, 2));
  conv_weight(m, "c2", 8, 8, 3, 3);
  m.register_module("bn2", batch_norm(8, 4));
  m.register_parameter("fc_w", torch::randn({5, 8}) * 0.3, false);
  m.register_parameter("fc_b", torch::randn({5}) * 0.1, false);
  m.define(R"(
def forward(self, x):
  a = torch.relu(self.bn1.forward(torch.conv2d(x, self.c1_w, self.c1_b, [1, 1], [1, 1], [1, 1], 1)))
  b = self.bn2.forward(torch.conv2d(a, self.c2_w, self.c2_b, [1, 1], [1, 1], [1, 1], 1))
  y = torch.relu(b + a)
  return torch.linear(torch.mean(y, [2, 3]), self.fc_w, self.fc_b)
)");
  return m;
}

// SqueezeNet's Fire: a squeeze conv, two expand convs concatenated, then a conv and pooling.
Module fire_net() {
  Module m = module("FireNet");
  conv_weight(m, "sq", 4, 3, 1, 1);
  conv_weight(m, "e1", 6, 4, 1, 2);
  conv_weight(m, "e3", 6, 4, 3, 3);
  conv_weight(m, "head", 5, 12, 1, 4);
  m.define(R"(
def forward(self, x):
  s = torch.relu(torch.conv2d(x, self.sq_w, self.sq_b, [1, 1], [0, 0], [1, 1], 1))
  a = torch.relu(torch.conv2d(s, self.e1_w, self.e1_b, [1, 1], [0, 0], [1, 1], 1))
  b = torch.relu(torch.conv2d(s, self.e3_w, self.e3_b, [1, 1], [1, 1], [1, 1], 1))
  y = torch.conv2d(torch.cat([a, b], 1), self.head_w, self.head_b, [1, 1], [0, 0], [1, 1], 1)
  return torch.flatten(torch.adaptive_avg_pool2d(y, [1, 1]), 1)
)");
  return m;
}

// MobileNet's depthwise chain: a pointwise conv, two depthwise convs on its channels (stride 2,
// then 1), a pointwise conv, and a flatten over 2x2 positions into a linear layer.
Module depthwise_net() {
  Module m = module("DepthwiseNet");
  conv_weight(m, "pw1", 8, 3, 1, 1, false);
  m.register_module("bn1", batch_norm(8, 2));
  conv_weight(m, "dw1", 8, 1, 3, 3, false);
  m.register_module("bn2", batch_norm(8, 4));
  conv_weight(m, "dw2", 8, 1, 3, 5);
  conv_weight(m, "pw2", 6, 8, 1, 6);
  m.register_parameter("fc_w", torch::randn({4, 6 * 4}) * 0.3, false);
  m.define(R"(
def forward(self, x):
  a = torch.clamp(self.bn1.forward(torch.conv2d(x, self.pw1_w, None, [1, 1], [0, 0], [1, 1], 1)), 0.0, 6.0)
  a = torch.hardtanh(self.bn2.forward(torch.conv2d(a, self.dw1_w, None, [2, 2], [1, 1], [1, 1], 8)), 0.0, 6.0)
  a = torch.relu(torch.conv2d(a, self.dw2_w, self.dw2_b, [1, 1], [1, 1], [1, 1], 8))
  a = torch.relu(torch.conv2d(a, self.pw2_w, self.pw2_b, [1, 1], [0, 0], [1, 1], 1))
  a = torch.max_pool2d(a, [2, 2], [2, 2], [0, 0], [1, 1], False)
  return torch.linear(torch.flatten(a, 1), self.fc_w, None)
)");
  return m;
}

// A split along the channels (a gated unit): its halves are multiplied, so the conv before it
// keeps every channel; the layers after it can still be pruned.
Module split_net() {
  Module m = module("SplitNet");
  conv_weight(m, "c1", 8, 3, 3, 1);
  conv_weight(m, "c2", 6, 4, 1, 2);
  m.register_parameter("fc_w", torch::randn({3, 6}) * 0.3, false);
  m.define(R"(
def forward(self, x):
  h = torch.conv2d(x, self.c1_w, self.c1_b, [1, 1], [1, 1], [1, 1], 1)
  p, q = torch.chunk(h, 2, 1)
  g = p * torch.sigmoid(q)
  y = torch.relu(torch.conv2d(g, self.c2_w, self.c2_b, [1, 1], [0, 0], [1, 1], 1))
  return torch.linear(torch.mean(y, [-1, -2]), self.fc_w, None)
)");
  return m;
}

// Input normalisation with per-channel tensors, then a squeeze-excitation block scaling a
// conv's channels by a gate computed from them.
Module normalised_se_net() {
  Module m = module("NormalisedSENet");
  m.register_buffer("mean", torch::tensor({0.485f, 0.456f, 0.406f}).reshape({1, 3, 1, 1}));
  m.register_buffer("std", torch::tensor({0.229f, 0.224f, 0.225f}).reshape({1, 3, 1, 1}));
  conv_weight(m, "c1", 8, 3, 3, 1);
  conv_weight(m, "se1", 2, 8, 1, 2);
  conv_weight(m, "se2", 8, 2, 1, 3);
  m.register_parameter("fc_w", torch::randn({4, 8}) * 0.3, false);
  m.define(R"(
def forward(self, x):
  x = (x - self.mean) / self.std
  a = torch.relu(torch.conv2d(x, self.c1_w, self.c1_b, [1, 1], [1, 1], [1, 1], 1))
  s = torch.adaptive_avg_pool2d(a, [1, 1])
  s = torch.sigmoid(torch.conv2d(torch.relu(torch.conv2d(s, self.se1_w, self.se1_b, [1, 1], [0, 0], [1, 1], 1)), self.se2_w, self.se2_b, [1, 1], [0, 0], [1, 1], 1))
  y = a * s
  return torch.linear(torch.reshape(torch.adaptive_avg_pool2d(y, [1, 1]), [y.size(0), -1]), self.fc_w, None)
)");
  return m;
}

const std::vector<std::int64_t> kInput = {1, 3, 8, 8};

torch::Tensor logits(Module& m, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  m.eval();
  return m.forward({x}).toTensor();
}

// Sets to zero, in `m`, every dim-0 slice of the removed channels: the writers' filters,
// biases and batch-norm scales and shifts, so that those channels' activations are zero.
void zero_removed(Module& m, const ChannelGraph& graph, const std::map<std::string, std::vector<std::int64_t>>& keep) {
  torch::NoGradGuard no_grad;
  for (const auto& group : graph.groups()) {
    auto it = keep.find(group.name);
    if (it == keep.end()) continue;
    std::vector<std::int64_t> removed;
    for (std::int64_t c = 0; c < group.channels; ++c) {
      if (!std::binary_search(it->second.begin(), it->second.end(), c)) removed.push_back(c);
    }
    for (const auto& member : group.members) {
      const auto colon = member.rfind(':');
      if (member.substr(colon + 1) != "0") continue;
      const std::string path = member.substr(0, colon);
      if (path.find("running_var") != std::string::npos) continue;
      for (const auto& p : m.named_attributes(/*recurse=*/true)) {
        if (p.name == path) p.value.toTensor().index_fill_(0, torch::tensor(removed), 0.0);
      }
    }
  }
}

// Every other channel of every prunable group kept.
std::map<std::string, std::vector<std::int64_t>> every_other(const ChannelGraph& graph) {
  std::map<std::string, std::vector<std::int64_t>> keep;
  for (const auto& group : graph.groups()) {
    if (!group.prunable || group.channels < 2) continue;
    for (std::int64_t c = 0; c < group.channels; c += 2) keep[group.name].push_back(c);
  }
  return keep;
}

// The contract every pattern must keep.
void expect_zeroed_channels_removed_keep_logits(Module source) {
  auto graph = ChannelGraph::analyse(source, kInput);
  ASSERT_TRUE(graph) << graph.status().to_string();
  const auto keep = every_other(*graph);
  ASSERT_FALSE(keep.empty());
  zero_removed(source, *graph, keep);
  graph = ChannelGraph::analyse(source, kInput);  // the removed channels' means are now zero
  ASSERT_TRUE(graph) << graph.status().to_string();
  auto pruned = graph->prune(keep);
  ASSERT_TRUE(pruned) << pruned.status().to_string();
  torch::manual_seed(7);
  const auto x = torch::rand(kInput);
  const auto expected = logits(source, x);
  const auto got = logits(*pruned, x);
  EXPECT_TRUE(torch::allclose(got, expected, 1e-4, 1e-5)) << "max difference " << (got - expected).abs().max().item<float>();

  // The cost at the kept widths is the pruned model's own, counted from its trace.
  std::map<std::string, int> widths;
  for (const auto& [name, channels] : keep) widths[name] = static_cast<int>(channels.size());
  const ArchCost predicted = graph->cost(widths);
  auto measured = torchscript_cost(*pruned, kInput);
  ASSERT_TRUE(measured);
  EXPECT_EQ(predicted.macs, measured->macs);
  EXPECT_EQ(predicted.params, measured->params);
  EXPECT_LT(predicted.macs, graph->cost().macs);
}

TEST(ChannelGraph, ResidualAdditionTiesTheStreamIntoOneGroup) {
  auto graph = ChannelGraph::analyse(residual_net(), kInput);
  ASSERT_TRUE(graph) << graph.status().to_string();
  const auto widths = graph->widths();
  ASSERT_EQ(widths.size(), 1u);  // c1 and c2 outputs are one stream
  EXPECT_EQ(widths.begin()->second, 8);
  expect_zeroed_channels_removed_keep_logits(residual_net());
}

TEST(ChannelGraph, ConcatenationKeepsEachInputsOffsets) {
  auto graph = ChannelGraph::analyse(fire_net(), kInput);
  ASSERT_TRUE(graph) << graph.status().to_string();
  const auto widths = graph->widths();
  EXPECT_EQ(widths.size(), 3u);  // squeeze, expand 1x1, expand 3x3; the head writes the logits
  EXPECT_EQ(widths.at("sq_w"), 4);  // a top-level weight names its group itself
  EXPECT_EQ(widths.at("e3_w"), 6);
  expect_zeroed_channels_removed_keep_logits(fire_net());
}

TEST(ChannelGraph, DepthwiseChainFollowsItsInputAndRewritesGroupCounts) {
  auto graph = ChannelGraph::analyse(depthwise_net(), kInput);
  ASSERT_TRUE(graph) << graph.status().to_string();
  EXPECT_EQ(graph->widths().size(), 2u);  // pw1 with both depthwise convs; pw2 into the flatten
  expect_zeroed_channels_removed_keep_logits(depthwise_net());
}

TEST(ChannelGraph, SplitChannelsStayWholeAndLaterLayersPrune) {
  auto graph = ChannelGraph::analyse(split_net(), kInput);
  ASSERT_TRUE(graph) << graph.status().to_string();
  for (const auto& group : graph->groups()) {
    if (group.channels == 8) EXPECT_FALSE(group.prunable) << group.name;
  }
  EXPECT_EQ(graph->widths().size(), 1u);
  expect_zeroed_channels_removed_keep_logits(split_net());
}

TEST(ChannelGraph, NormalisationAndSqueezeExcitationPrune) {
  auto graph = ChannelGraph::analyse(normalised_se_net(), kInput);
  ASSERT_TRUE(graph) << graph.status().to_string();
  // c1's channels and the gate's outputs are one group; the squeeze is another.
  EXPECT_EQ(graph->widths().size(), 2u);
  expect_zeroed_channels_removed_keep_logits(normalised_se_net());
}

TEST(ChannelGraph, FullWidthsCostWhatTheTraceCounts) {
  for (Module m : {residual_net(), fire_net(), depthwise_net(), split_net(), normalised_se_net()}) {
    auto graph = ChannelGraph::analyse(m, kInput);
    ASSERT_TRUE(graph);
    auto traced = torchscript_cost(m, kInput);
    ASSERT_TRUE(traced);
    EXPECT_EQ(graph->cost().macs, traced->macs) << m.type()->name()->name();
    EXPECT_EQ(graph->cost().params, traced->params) << m.type()->name()->name();
  }
}

TEST(ChannelGraph, SaliencyFollowsBatchNormScales) {
  Module m = residual_net();
  {
    torch::NoGradGuard no_grad;
    m.attr("bn1").toModule().attr("weight").toTensor()[3] = 0.0;
    m.attr("bn2").toModule().attr("weight").toTensor()[3] = 0.0;
  }
  auto graph = ChannelGraph::analyse(m, kInput);
  ASSERT_TRUE(graph);
  const auto saliency = graph->saliency();
  ASSERT_EQ(saliency.size(), 1u);
  EXPECT_EQ(saliency.begin()->second.argmin().item<std::int64_t>(), 3);
}

// A channel whose batch norm has no scale outputs a constant (its shift): removing it must move
// that constant into the next batch norm's running mean, or every consumer shifts.
TEST(ChannelGraph, RemovedConstantChannelIsFoldedIntoTheNextBatchNorm) {
  Module m = module("ConstantChannel");
  conv_weight(m, "c1", 8, 3, 3, 1, false);
  m.register_module("bn1", batch_norm(8, 2));
  conv_weight(m, "c2", 6, 8, 1, 3, false);
  m.register_module("bn2", batch_norm(6, 4));
  m.register_parameter("fc_w", torch::randn({4, 6}) * 0.3, false);
  m.define(R"(
def forward(self, x):
  a = torch.relu(self.bn1.forward(torch.conv2d(x, self.c1_w, None, [1, 1], [1, 1], [1, 1], 1)))
  b = torch.relu(self.bn2.forward(torch.conv2d(a, self.c2_w, None, [1, 1], [0, 0], [1, 1], 1)))
  return torch.linear(torch.mean(b, [2, 3]), self.fc_w, None)
)");
  {
    torch::NoGradGuard no_grad;
    Module bn1 = m.attr("bn1").toModule();
    bn1.attr("weight").toTensor()[5] = 0.0;
    bn1.attr("bias").toTensor()[5] = 2.0;
  }
  auto graph = ChannelGraph::analyse(m, kInput);
  ASSERT_TRUE(graph) << graph.status().to_string();
  const auto saliency = graph->saliency().at("c1_w");
  EXPECT_EQ(saliency.argmin().item<std::int64_t>(), 5);
  auto pruned = graph->prune({{"c1_w", {0, 1, 2, 3, 4, 6, 7}}});
  ASSERT_TRUE(pruned) << pruned.status().to_string();
  torch::manual_seed(9);
  const auto x = torch::rand(kInput);
  const auto expected = logits(m, x);
  const auto got = logits(*pruned, x);
  EXPECT_TRUE(torch::allclose(got, expected, 1e-4, 1e-5)) << "max difference " << (got - expected).abs().max().item<float>();
}

// The pretrained ImageNet models (when ../shared is beside the checkout): MobileNetV2's
// residual streams and TF-style padding, SqueezeNet's Fire concatenations.
TEST(ChannelGraph, PretrainedImageNetModelsPruneWithTheirLogitsKept) {
  for (const std::string name : {"mobilenet_v2_1.0", "squeezenet1_1"}) {
    const std::string path = std::string(EDGEFLEET_SOURCE_DIR) + "/../shared/imagenet/models/" + name + ".pt";
    if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is absent";
    Module m = torch::jit::load(path);
    const std::vector<std::int64_t> input = {1, 3, 224, 224};
    auto graph = ChannelGraph::analyse(m, input);
    ASSERT_TRUE(graph) << graph.status().to_string();
    EXPECT_EQ(graph->widths().size(), 25u) << name;
    const auto keep = every_other(*graph);
    zero_removed(m, *graph, keep);
    graph = ChannelGraph::analyse(m, input);
    ASSERT_TRUE(graph);
    auto pruned = graph->prune(keep);
    ASSERT_TRUE(pruned) << pruned.status().to_string();
    torch::manual_seed(7);
    const auto x = torch::rand(input);
    const auto expected = logits(m, x);
    const auto got = logits(*pruned, x);
    EXPECT_TRUE(torch::allclose(got, expected, 1e-3, 1e-4)) << name << ": max difference " << (got - expected).abs().max().item<float>();
  }
}

TEST(ChannelGraph, UnknownOperationIsRefusedByName) {
  Module m = module("Transposing");
  conv_weight(m, "c1", 4, 3, 1, 1);
  m.define(R"(
def forward(self, x):
  y = torch.conv2d(x, self.c1_w, self.c1_b, [1, 1], [0, 0], [1, 1], 1)
  return torch.cumsum(y, 1).flatten(1)
)");
  auto graph = ChannelGraph::analyse(m, kInput);
  ASSERT_FALSE(graph);
  EXPECT_EQ(graph.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(graph.status().message().find("aten::cumsum"), std::string::npos) << graph.status().message();
}

TEST(ChannelGraph, ReshapeToAWrittenChannelCountIsRefused) {
  Module m = module("FixedView");
  conv_weight(m, "c1", 4, 3, 1, 1);
  m.register_parameter("fc_w", torch::randn({2, 4}), false);
  m.define(R"(
def forward(self, x):
  y = torch.adaptive_avg_pool2d(torch.conv2d(x, self.c1_w, self.c1_b, [1, 1], [0, 0], [1, 1], 1), [1, 1])
  return torch.linear(y.view([y.size(0), 4]), self.fc_w, None)
)");
  auto graph = ChannelGraph::analyse(m, kInput);
  ASSERT_FALSE(graph);
  EXPECT_NE(graph.status().message().find("aten::view"), std::string::npos) << graph.status().message();
}

TEST(ChannelGraph, PruneRejectsBadRequests) {
  auto graph = ChannelGraph::analyse(residual_net(), kInput);
  ASSERT_TRUE(graph);
  const std::string group = graph->widths().begin()->first;
  EXPECT_FALSE(graph->prune({{"no-such-group", {0}}}));
  EXPECT_FALSE(graph->prune({{group, {}}}));
  EXPECT_FALSE(graph->prune({{group, {3, 1}}}));
  EXPECT_FALSE(graph->prune({{group, {0, 8}}}));
}

}  // namespace
}  // namespace edgefleet
