#include "edgefleet/architecture.h"

#include <gtest/gtest.h>

#include <map>

#include "model/torchscript_cost.h"
#include "edgefleet/zoo.h"
#include "zoo/module_builder.h"

namespace edgefleet {

TEST(Zoo, HasSixModelsSpanningTenTimesInMacs) {
  const auto zoo = builtin_zoo();
  ASSERT_GE(zoo.size(), 6u);
  std::int64_t smallest = INT64_MAX, largest = 0;
  for (const auto& entry : zoo) {
    auto module = build_module(entry.arch, 1);
    const auto cost = torchscript_cost(module, {1, 1, 28, 28}).value();
    smallest = std::min(smallest, cost.macs);
    largest = std::max(largest, cost.macs);
  }
  EXPECT_GE(largest, 10 * smallest);
}

TEST(Architecture, EveryZooModelMapsABatchToLogitsAndFeatures) {
  for (const auto& entry : builtin_zoo()) {
    auto module = build_module(entry.arch, 1);
    module.eval();
    torch::NoGradGuard no_grad;
    auto logits = module.forward({torch::rand({3, 1, 28, 28})}).toTensor();
    EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{3, 10})) << entry.name;
    auto features = module.get_method("features")({torch::rand({2, 1, 28, 28})}).toTensor();
    EXPECT_EQ(features.dim(), 2) << entry.name;
  }
}

TEST(Architecture, SameSeedGivesSameWeights) {
  const auto arch = builtin_zoo().front().arch;
  auto a = build_module(arch, 42);
  auto b = build_module(arch, 42);
  auto c = build_module(arch, 43);
  auto pa = a.parameters().begin();
  EXPECT_TRUE((*pa).equal(*b.parameters().begin()));
  EXPECT_FALSE((*pa).equal(*c.parameters().begin()));
}

TEST(Architecture, SpecTravelsInsideTheModule) {
  const auto arch = builtin_zoo()[2].arch;
  auto module = build_module(arch, 1);
  const auto back = arch_spec_of(module).value();
  EXPECT_EQ(nlohmann::json(back), nlohmann::json(arch));
}

TEST(Architecture, MacsOfASingleConvMatchTheFormula) {
  ArchSpec spec;
  spec.family = "cnn";
  spec.layers.resize(1);
  spec.layers[0].out = 4;  // 3x3 conv, 1 -> 4 channels, 28x28 output
  auto module = build_module(spec, 1);
  const auto cost = torchscript_cost(module, {1, 1, 28, 28}).value();
  // conv: C_in * C_out * k^2 * H_out * W_out; classifier: 4 * 10
  EXPECT_EQ(cost.macs, 1 * 4 * 9 * 28 * 28 + 4 * 10);
  // conv weight 36, BN gamma+beta 8, fc 40 + 10
  EXPECT_EQ(cost.params, 36 + 8 + 50);
}

// Every channel dimension of every tensor belongs to exactly one group of the right size,
// so pruning a group can slice all its members consistently.
TEST(ChannelGroups, CoverEveryChannelDimensionOnce) {
  for (const auto& entry : builtin_zoo()) {
    auto module = build_module(entry.arch, 1);
    std::map<std::string, torch::Tensor> tensors;
    for (const auto& p : module.named_parameters()) tensors[p.name] = p.value;
    for (const auto& b : module.named_buffers()) tensors[b.name] = b.value;
    std::map<std::pair<std::string, int>, int> seen;
    for (const auto& group : channel_groups(entry.arch)) {
      for (const auto& member : group.members) {
        ASSERT_TRUE(tensors.count(member.tensor)) << entry.name << ": " << member.tensor;
        EXPECT_EQ(tensors[member.tensor].size(member.dim), group.channels) << entry.name << ": " << member.tensor;
        seen[{member.tensor, member.dim}]++;
      }
    }
    for (const auto& [name, tensor] : tensors) {
      const bool depthwise = tensor.dim() == 4 && tensor.size(1) == 1 && name.find("_dw_") != std::string::npos;
      // dim 0 is an output channel for every tensor but the classifier's weight and bias.
      if (name != "fc_w" && name != "fc_b") EXPECT_EQ((seen[{name, 0}]), 1) << entry.name << ": " << name;
      if (tensor.dim() >= 2 && !depthwise) EXPECT_EQ((seen[{name, 1}]), 1) << entry.name << ": " << name << " input dim";
    }
  }
}

TEST(ChannelGroups, ResidualAddTiesBlockInputAndOutput) {
  ArchSpec spec;
  spec.family = "resnet";
  spec.layers.resize(2);
  spec.layers[0].out = 8;
  spec.layers[1].kind = LayerKind::kBasicResidual;
  spec.layers[1].out = 8;  // identity shortcut: the stem's group also holds l1_c2
  const auto groups = channel_groups(spec);
  const auto& stem = groups[1];
  EXPECT_EQ(stem.name, "l0");
  bool has_c2 = false;
  for (const auto& m : stem.members) has_c2 |= m.tensor == "l1_c2_w" && m.dim == 0;
  EXPECT_TRUE(has_c2);
  EXPECT_FALSE(groups[0].prunable);
}

TEST(ArchSpecJson, RejectsUnknownLayerKind) {
  auto spec = arch_spec_from_json(nlohmann::json::parse(R"({"layers": [{"kind": "transformer"}]})"));
  EXPECT_EQ(spec.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(spec.status().message().find("layers[0].kind 'transformer'"), std::string::npos);
}

}  // namespace edgefleet
