// Channel dependencies read from any TorchScript graph, and physical pruning through them:
// for each pattern (residual add, concatenation, depthwise chain, split, input normalisation,
// squeeze-excitation, flatten into a linear layer), channels whose activations are zero can be
// removed without changing the logits; the cost at chosen widths is the pruned model's; and
// operations the analysis does not know are refused by name.
#include <gtest/gtest.h>

#include <filesystem>

#include "model/torchscript_cost.h"
#include "port/channel_graph.h"
#include "scripted_nets.h"

namespace edgefleet {
namespace {

using torch::jit::Module;

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

  // So are its kernels (what a latency model prices), kernel by kernel.
  auto pruned_graph = ChannelGraph::analyse(*pruned, kInput);
  ASSERT_TRUE(pruned_graph) << pruned_graph.status().to_string();
  const auto at_widths = graph->kernels(widths);
  const auto& built = pruned_graph->kernels();
  ASSERT_EQ(at_widths.size(), built.size());
  for (std::size_t i = 0; i < built.size(); ++i) {
    EXPECT_EQ(at_widths[i].kind, built[i].kind) << i;
    EXPECT_EQ(at_widths[i].macs, built[i].macs) << i << " " << built[i].kind;
    EXPECT_EQ(at_widths[i].weights, built[i].weights) << i << " " << built[i].kind;
    EXPECT_EQ(at_widths[i].input_elements, built[i].input_elements) << i << " " << built[i].kind;
    EXPECT_EQ(at_widths[i].output_elements, built[i].output_elements) << i << " " << built[i].kind;
  }
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

// A converted model's batch norms may carry folded filter scales: a channel with the largest
// gamma can still output a constant. Probed on real inputs, saliency is what removing a channel
// moves in the layers that read it: its spread there times their weights on it.
TEST(ChannelGraph, ProbedSaliencyIsEachChannelsSpreadTimesTheWeightsThatReadIt) {
  Module m = module("FoldedScales");
  conv_weight(m, "c1", 8, 3, 3, 1, false);
  m.register_module("bn1", batch_norm(8, 2));
  conv_weight(m, "c2", 6, 8, 1, 3, false);
  m.register_parameter("fc_w", torch::randn({4, 6}) * 0.3, false);
  m.define(R"(
def forward(self, x):
  a = torch.relu(self.bn1.forward(torch.conv2d(x, self.c1_w, None, [1, 1], [1, 1], [1, 1], 1)))
  return torch.linear(torch.mean(torch.conv2d(a, self.c2_w, None, [1, 1], [0, 0], [1, 1], 1), [2, 3]), self.fc_w, None)
)");
  {
    torch::NoGradGuard no_grad;
    m.attr("c1_w").toTensor()[5].zero_();             // channel 5 sees nothing ...
    m.attr("bn1").toModule().attr("weight").toTensor()[5] = 50.0;  // ... behind the largest scale
    m.attr("bn1").toModule().attr("bias").toTensor()[5] = 1.0;
  }
  torch::manual_seed(11);
  std::vector<std::int64_t> batch = kInput;
  batch[0] = 5;
  const torch::Tensor photos = torch::rand(batch);
  auto parameters = ChannelGraph::analyse(m, kInput);
  auto probed = ChannelGraph::analyse(m, kInput, photos);
  ASSERT_TRUE(parameters && probed);
  EXPECT_EQ(parameters->saliency().at("c1_w").argmax().item<std::int64_t>(), 5);  // by gamma
  const auto measured = probed->saliency().at("c1_w");
  EXPECT_EQ(measured.argmin().item<std::int64_t>(), 5);
  EXPECT_FLOAT_EQ(measured[5].item<float>(), 0.0f);

  torch::Tensor a;
  {
    torch::NoGradGuard no_grad;
    Module bn1 = m.attr("bn1").toModule();
    bn1.eval();
    a = torch::relu(bn1.forward({torch::conv2d(photos, m.attr("c1_w").toTensor(), {}, 1, 1)}).toTensor());
  }
  const auto spread = a.var(std::vector<std::int64_t>{0, 2, 3}, /*unbiased=*/false).sqrt();
  const auto reads = m.attr("c2_w").toTensor().pow(2).sum(std::vector<std::int64_t>{0, 2, 3}).sqrt();
  EXPECT_TRUE(torch::allclose(measured, spread * reads, 1e-4, 1e-6)) << measured << spread * reads;
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

// A removed channel leaves its mean in the next layer; measured on the photos the model will
// see (the probe), that mean compensates better than one measured on noise.
TEST(ChannelGraph, ChannelMeansFromTheProbeCompensateRemovedChannelsOnThoseInputs) {
  torch::manual_seed(3);
  std::vector<std::int64_t> batch = kInput;
  batch[0] = 6;
  const torch::Tensor photos = torch::rand(batch) * 0.2 + 0.8;  // bright: far from uniform noise
  auto noise_graph = ChannelGraph::analyse(residual_net(), kInput);
  auto probe_graph = ChannelGraph::analyse(residual_net(), kInput, photos);
  ASSERT_TRUE(noise_graph && probe_graph);
  EXPECT_FALSE(noise_graph->probe().defined());
  EXPECT_TRUE(torch::equal(probe_graph->probe(), photos));
  Module source = residual_net();
  auto error = [&](const ChannelGraph& graph) {
    Module pruned = graph.prune(every_other(graph)).value();
    return (logits(pruned, photos) - logits(source, photos)).abs().mean().item<double>();
  };
  EXPECT_LT(error(*probe_graph), error(*noise_graph));

  batch[1] = 1;  // a probe of another shape is refused
  EXPECT_EQ(ChannelGraph::analyse(residual_net(), kInput, torch::rand(batch)).status().code(), StatusCode::kInvalidArgument);
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
