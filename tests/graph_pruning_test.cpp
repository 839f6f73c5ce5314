// Pruning a TorchScript classifier from its graph (edgefleet/graph_pruning.h): how the MACs
// budget is shared among channel groups.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "edgefleet/graph_pruning.h"
#include "scripted_nets.h"
#include "test_support.h"

namespace edgefleet {
namespace {

using torch::jit::Module;

// Two branches of 16 channels each, concatenated, averaged, classified: the classifier reads
// the first branch with large weights and the second with tiny ones, so cutting the second
// hardly changes an answer and cutting the first changes many.
Module one_branch_matters() {
  Module m = module("TwoBranches");
  conv_weight(m, "loud", 16, 3, 3, 1);
  conv_weight(m, "quiet", 16, 3, 3, 2);
  torch::manual_seed(3);
  auto fc = torch::randn({4, 32});
  fc.slice(1, 16, 32) *= 1e-3;
  m.register_parameter("fc_w", fc, false);
  m.define(R"(
def forward(self, x):
  a = torch.relu(torch.conv2d(x, self.loud_w, self.loud_b, [1, 1], [1, 1], [1, 1], 1))
  b = torch.relu(torch.conv2d(x, self.quiet_w, self.quiet_b, [1, 1], [1, 1], [1, 1], 1))
  return torch.linear(torch.mean(torch.cat([a, b], 1), [2, 3]), self.fc_w, None)
)");
  return m;
}

std::map<std::string, int> kept_widths(const GraphPruneResult& result) {
  std::map<std::string, int> kept;
  for (const auto& g : result.groups) kept[g.name] = g.kept;
  return kept;
}

TEST(GraphPruning, SensitivitySpendsTheBudgetWhereTheAnswersChangeLeast) {
  testing::TempDir dir;
  const ModelCard card = save_scripted_classifier(one_branch_matters(), dir.path(), "two_branches", 4);
  for (int i = 0; i < 8; ++i) testing::write_png(dir.file("photos/a/" + std::to_string(i) + ".png"), 8, 8, 3, i);
  GraphPruneOptions options;
  options.macs_fraction = 0.7;
  options.channel_multiple = 4;
  options.probe_data = dir.file("photos");
  options.allocation = GraphPruneOptions::Allocation::kSensitivity;
  auto sensitive = prune_model_graph(card, options, dir.file("sensitive.pt"));
  ASSERT_TRUE(sensitive) << sensitive.status().to_string();
  EXPECT_LE(sensitive->macs, 0.7 * sensitive->base_macs);
  auto widths = kept_widths(*sensitive);
  EXPECT_EQ(widths.at("loud_w"), 16);
  EXPECT_LT(widths.at("quiet_w"), 16);

  options.allocation = GraphPruneOptions::Allocation::kUniform;  // the same fraction of both
  auto uniform = prune_model_graph(card, options, dir.file("uniform.pt"));
  ASSERT_TRUE(uniform) << uniform.status().to_string();
  widths = kept_widths(*uniform);
  EXPECT_EQ(widths.at("loud_w"), widths.at("quiet_w"));
  EXPECT_LT(widths.at("loud_w"), 16);

  options.allocation = GraphPruneOptions::Allocation::kSensitivity;
  options.probe_data.clear();  // nothing to measure the answers on
  auto refused = prune_model_graph(card, options, dir.file("refused.pt"));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("needs photos"), std::string::npos) << refused.status().message();
}

}  // namespace
}  // namespace edgefleet
