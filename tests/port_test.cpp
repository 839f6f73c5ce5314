// Porting: the cost model, the goal tree, structured pruning with physical removal, the
// config's errors, and `run_port` end to end on Fashion-MNIST.
#include <algorithm>
#include <map>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "model/torchscript_cost.h"
#include "edgefleet/device_profile.h"
#include "edgefleet/goal_tree.h"
#include "edgefleet/latency_predictor.h"
#include "edgefleet/port.h"
#include "edgefleet/zoo.h"
#include "port/adaptation_executor.h"
#include "port/channel_pruning.h"
#include "test_support.h"
#include "zoo/module_builder.h"
#include "zoo/training.h"

namespace edgefleet {
namespace {

using nlohmann::json;

ModelCost traced_cost(const ArchSpec& spec) {
  auto module = build_module(spec, 1);
  module.eval();
  return torchscript_cost(module, {1, spec.in_channels, spec.input_size, spec.input_size}).value();
}

TEST(ArchCost, MatchesTheCostTracedFromTheBuiltModuleForEveryZooArchitecture) {
  for (const auto& entry : builtin_zoo()) {
    const ArchCost cost = arch_cost(entry.arch);
    const ModelCost traced = traced_cost(entry.arch);
    EXPECT_EQ(cost.macs, traced.macs) << entry.name;
    EXPECT_EQ(cost.params, traced.params) << entry.name;
    EXPECT_GT(cost.peak_activation_bytes, 0) << entry.name;
  }
}

TEST(ArchCost, LatencyEstimateAddsMemoryAndComputeTimeAndRooflineTakesTheLarger) {
  const ArchCost cost = arch_cost(builtin_zoo().front().arch);
  Hardware hw;
  hw.peak_gflops = 10;
  hw.memory_bandwidth_gbs = 1;
  const double sum = estimated_latency_ms(cost, hw, LatencyModel::kSum).value();
  const double roof = estimated_latency_ms(cost, hw, LatencyModel::kRoofline).value();
  const double compute_only = 2.0 * static_cast<double>(cost.macs) / 10e9 * 1e3;
  EXPECT_GT(sum, compute_only);
  EXPECT_LT(roof, sum);
  EXPECT_GE(roof, compute_only / static_cast<double>(cost.layers.size()));
  EXPECT_FALSE(estimated_latency_ms(cost, Hardware{}).has_value());
}

// Zeroing every weight that writes some channels makes them constant zero; removing them
// physically must then leave the logits unchanged.
TEST(ChannelPruning, RemovingDeadChannelsKeepsTheLogitsForEveryZooArchitecture) {
  torch::manual_seed(3);
  for (const auto& entry : builtin_zoo()) {
    PrunableModel model{entry.arch, build_module(entry.arch, 7)};
    model.module.eval();
    std::map<std::string, std::vector<std::int64_t>> keep;
    {
      torch::NoGradGuard no_grad;
      for (const auto& group : channel_groups(entry.arch)) {
        if (!group.prunable || group.channels < 2) continue;
        std::vector<std::int64_t> kept;
        for (int c = 0; c < group.channels; ++c) {
          if (c % 3 != 1) kept.push_back(c);
        }
        for (const auto& member : group.members) {
          if (member.dim != 0 || member.tensor.size() < 3 || member.tensor.compare(member.tensor.size() - 3, 3, "_rv") == 0) continue;
          auto t = model.module.attr(member.tensor).toTensor();
          for (int c = 1; c < group.channels; c += 3) t.select(0, c).zero_();
        }
        keep[group.name] = kept;
      }
    }
    const auto x = torch::rand({2, entry.arch.in_channels, entry.arch.input_size, entry.arch.input_size});
    const auto before = model.module.forward({x}).toTensor();
    PrunableModel pruned = prune_channels(model, keep).value();
    const auto after = pruned.module.forward({x}).toTensor();
    EXPECT_TRUE(torch::allclose(before, after, 1e-4, 1e-4)) << entry.name << ": max diff " << (before - after).abs().max().item<float>();
    EXPECT_LT(arch_cost(pruned.spec).macs, arch_cost(entry.arch).macs) << entry.name;
    EXPECT_EQ(arch_cost(pruned.spec).macs, traced_cost(pruned.spec).macs) << entry.name;
  }
}

// A channel whose filters and batch-norm scale are zero outputs its activated batch-norm shift,
// a constant its consumer relies on; removing it must fold that constant into the consumer.
// Checked on the groups a dense layer reads (after the global pool a constant is exact).
TEST(ChannelPruning, RemovingConstantChannelsFoldsTheirOutputIntoTheConsumers) {
  int checked = 0;
  for (const auto& entry : builtin_zoo()) {
    PrunableModel model{entry.arch, build_module(entry.arch, 7)};
    model.module.eval();
    for (const auto& group : channel_groups(entry.arch)) {
      bool dense_consumers = true, plain_writer = false;
      for (const auto& member : group.members) {
        if (member.dim == 1) dense_consumers = dense_consumers && (member.tensor == "fc_w" || member.tensor == "emb_w");
        if (member.dim == 0 && member.tensor.size() > 2 && member.tensor.compare(member.tensor.size() - 2, 2, "_w") == 0) {
          const std::string layer = member.tensor.substr(0, member.tensor.size() - 2);
          plain_writer = layer.size() > 1 && layer[0] == 'l' && layer.find_first_not_of("0123456789", 1) == std::string::npos;
        }
      }
      if (!group.prunable || !dense_consumers || !plain_writer || group.channels < 4) continue;
      std::vector<std::int64_t> kept;
      {
        torch::NoGradGuard no_grad;
        for (int c = 0; c < group.channels; ++c) {
          if (c % 4 != 0) {
            kept.push_back(c);
            continue;
          }
          for (const auto& member : group.members) {
            if (member.dim != 0) continue;
            const std::string& t = member.tensor;
            const std::string suffix = t.substr(t.rfind('_'));
            auto tensor = model.module.attr(t).toTensor();
            if (suffix == "_w" || suffix == "_g") tensor.select(0, c).zero_();
            if (suffix == "_b") tensor.select(0, c).fill_(0.7);
          }
        }
      }
      const auto x = torch::rand({2, entry.arch.in_channels, entry.arch.input_size, entry.arch.input_size});
      const auto before = model.module.forward({x}).toTensor();
      PrunableModel pruned = prune_channels(model, {{group.name, kept}}).value();
      const auto after = pruned.module.forward({x}).toTensor();
      EXPECT_TRUE(torch::allclose(before, after, 1e-4, 1e-4)) << entry.name << " " << group.name << ": max diff "
                                                               << (before - after).abs().max().item<float>();
      ++checked;
    }
  }
  EXPECT_GT(checked, 0);
}

TEST(ChannelPruning, NarrowingAProjectionBlockToItsInputWidthKeepsTheProjection) {
  for (const auto& entry : builtin_zoo()) {
    if (entry.arch.family != "resnet") continue;
    const auto widths = group_widths(entry.arch);
    std::map<std::string, int> narrow;
    for (const auto& [name, width] : widths) narrow[name] = 4;  // every block now maps 4 channels to 4
    const ArchSpec spec = spec_with_widths(entry.arch, narrow).value();
    EXPECT_EQ(channel_groups(spec).size(), channel_groups(entry.arch).size());
    auto module = build_module(spec, 1);
    EXPECT_NO_THROW(module.forward({torch::rand({1, spec.in_channels, spec.input_size, spec.input_size})}));
    return;
  }
  GTEST_SKIP() << "no resnet in the zoo";
}

TEST(ChannelPruning, RejectsUnknownGroupsAndBadChannelLists) {
  const ArchSpec arch = builtin_zoo().front().arch;
  PrunableModel model{arch, build_module(arch, 1)};
  EXPECT_EQ(prune_channels(model, {{"nope", {0}}}).status().code(), StatusCode::kInvalidArgument);
  const std::string group = group_widths(arch).begin()->first;
  EXPECT_EQ(prune_channels(model, {{group, {}}}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(prune_channels(model, {{group, {1, 0}}}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(prune_channels(model, {{group, {0, 100000}}}).status().code(), StatusCode::kInvalidArgument);
}

// A start already narrowed to two blocks per group (a parent goal's model): cutting every group
// by one ratio would halve them all at once (a quarter of the MACs); a block at a time lands
// just under the budget.
TEST(L1Executor, NarrowsOneBlockAtATimeSoANarrowStartLandsNearItsBudget) {
  const auto zoo = builtin_zoo();
  const auto& entry = *std::find_if(zoo.begin(), zoo.end(), [](const ZooEntry& e) { return e.name == "cnn_plain"; });
  PrunableModel base{entry.arch, build_module(entry.arch, 7)};
  base.module.eval();
  std::map<std::string, int> sixteen = group_widths(base);
  for (auto& [group, width] : sixteen) width = std::min(width, 16);
  const PrunableModel start = prune_channels(base, top_channels(filter_l1_norms(base), sixteen)).value();
  PortGoal goal;
  goal.name = "child";
  const std::int64_t start_macs = measure(start, {}, goal, LatencyModel::kSum).cost.macs;
  goal.max_macs = start_macs * 85 / 100;

  PortConfig config;
  config.algorithm = PortAlgorithm::kL1;
  const TrainingData none;
  auto executor = make_executor(config, none, none);
  executor->init(start, goal, "");
  int steps = 0;
  while (!executor->finished(meets(executor->measure_current(LatencyModel::kSum), goal)) && steps < 1000) {
    executor->adjust();
    ++steps;
  }
  const PrunableModel child = executor->result();
  const std::int64_t macs = measure(child, {}, goal, LatencyModel::kSum).cost.macs;
  EXPECT_LE(macs, *goal.max_macs);
  EXPECT_GT(macs, start_macs / 2);
  for (const auto& [group, width] : group_widths(child)) EXPECT_EQ(width % 8, 0) << group;
}

TEST(GoalTree, HangsEachGoalUnderAnImmediatePredecessorAsInTheMistifyFigure) {
  // Demands (memory, compute), larger = more demanding. 0 < 1 < 3, 0 < 2, 1 and 2 incomparable.
  const std::vector<std::vector<double>> demands = {{1, 1}, {2, 3}, {3, 2}, {4, 4}, {5, 1}};
  const GoalTree tree = build_goal_tree(demands);
  EXPECT_EQ(tree.parent[0], -1);
  EXPECT_EQ(tree.parent[1], 0);
  EXPECT_EQ(tree.parent[2], 0);
  EXPECT_TRUE(tree.parent[3] == 1 || tree.parent[3] == 2);
  EXPECT_EQ(tree.parent[4], 0);
  EXPECT_EQ(tree.roots, std::vector<int>{0});
  ASSERT_EQ(tree.order.size(), demands.size());
  std::vector<int> position(demands.size());
  for (std::size_t i = 0; i < tree.order.size(); ++i) position[tree.order[i]] = static_cast<int>(i);
  for (std::size_t g = 0; g < demands.size(); ++g) {
    if (tree.parent[g] >= 0) EXPECT_LT(position[tree.parent[g]], position[g]);
  }
}

TEST(GoalTree, ParentsOfRandomGoalsAreMaximalPredecessors) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> level(0, 9);
  std::vector<std::vector<double>> demands(150, std::vector<double>(3));
  for (auto& d : demands)
    for (auto& v : d) v = level(rng);
  const GoalTree tree = build_goal_tree(demands);
  EXPECT_EQ(tree.order.size(), demands.size());
  for (std::size_t j = 0; j < demands.size(); ++j) {
    const int p = tree.parent[j];
    if (p < 0) {
      for (std::size_t k = 0; k < demands.size(); ++k) {
        if (k != j && demands[k] != demands[j]) EXPECT_FALSE(at_most_as_demanding(demands[k], demands[j])) << j << " has predecessor " << k;
      }
      continue;
    }
    EXPECT_TRUE(at_most_as_demanding(demands[p], demands[j]));
    for (std::size_t k = 0; k < demands.size(); ++k) {
      if (static_cast<int>(k) == p || k == j || demands[k] == demands[p] || demands[k] == demands[j]) continue;
      EXPECT_FALSE(at_most_as_demanding(demands[p], demands[k]) && at_most_as_demanding(demands[k], demands[j]))
          << k << " lies between " << p << " and " << j;
    }
  }
}

json minimal_config() {
  return {{"base_model", "cnn_tiny"}, {"goals", {{{"name", "half"}, {"max_macs", 250000}}}}};
}

std::string config_error(const json& j) {
  auto c = port_config_from_json(j, "port.json", builtin_fleet_dir());
  return c.has_value() ? "" : c.status().message();
}

TEST(PortConfig, NamesTheFieldOfEachMistake) {
  EXPECT_EQ(config_error(minimal_config()), "");
  json j = minimal_config();
  j["goals"][0]["device"] = "toaster";
  EXPECT_NE(config_error(j).find("goals[0].device: no device 'toaster' in the fleet"), std::string::npos) << config_error(j);
  j = minimal_config();
  j["goals"][0]["max_latency_ms"] = 5;
  EXPECT_NE(config_error(j).find("max_latency_ms needs a 'device'"), std::string::npos) << config_error(j);
  j = minimal_config();
  j["goals"][0]["max_flops"] = 5;
  EXPECT_NE(config_error(j).find("unknown field 'max_flops'"), std::string::npos) << config_error(j);
  j = minimal_config();
  j["goals"].push_back(j["goals"][0]);
  EXPECT_NE(config_error(j).find("'half' is used twice"), std::string::npos) << config_error(j);
  j = minimal_config();
  j["goals"][0].erase("max_macs");
  EXPECT_NE(config_error(j).find("constrains nothing"), std::string::npos) << config_error(j);
  j = minimal_config();
  j["algorithm"] = "magic";
  EXPECT_NE(config_error(j).find("algorithm 'magic'"), std::string::npos) << config_error(j);
  j = minimal_config();
  j["goals"][0]["min_accuracy"] = 90;
  EXPECT_NE(config_error(j).find("min_accuracy must be a number in (0, 1]"), std::string::npos) << config_error(j);
  j = minimal_config();
  j["goals"][0]["device"] = "raspberry-pi";
  j["goals"][0]["max_memory_mb"] = 1e9;
  EXPECT_NE(config_error(j).find("contradicts device 'raspberry-pi'"), std::string::npos) << config_error(j);
  j = minimal_config();
  j["dataset"] = "/no/such/folder";
  EXPECT_NE(config_error(j).find("neither fashion-mnist nor an image folder"), std::string::npos) << config_error(j);
  j = minimal_config();
  const testing::TempDir folder;
  j["dataset"] = folder.path();
  j["finetune"] = {{"augment", "yes"}};
  EXPECT_NE(config_error(j).find("finetune.augment must be true or false"), std::string::npos) << config_error(j);
  j["finetune"] = {{"optimizer", "adam"}};
  EXPECT_NE(config_error(j).find("finetune.optimizer 'adam' is not one of: sgd, adamw"), std::string::npos) << config_error(j);
}

TEST(PortConfig, TheFineTuningOptimizerIsReadAndWrittenBack) {
  json j = minimal_config();
  EXPECT_EQ(port_config_from_json(j, "test", builtin_fleet_dir()).value().finetune.optimizer, FinetuneOptimizer::kSgd);
  j["finetune"] = {{"optimizer", "adamw"}};
  const PortConfig c = port_config_from_json(j, "test", builtin_fleet_dir()).value();
  EXPECT_EQ(c.finetune.optimizer, FinetuneOptimizer::kAdamW);
  EXPECT_EQ(port_config_to_json(c)["finetune"]["optimizer"], "adamw");
  EXPECT_FALSE(port_config_to_json(port_config_from_json(minimal_config(), "test", builtin_fleet_dir()).value())["finetune"].contains("optimizer"));
}

TEST(PortConfig, ADeviceGoalTakesItsHardwareAsTheBudget) {
  json j = minimal_config();
  j["goals"][0] = {{"name", "pi"}, {"device", "raspberry-pi"}, {"max_latency_ms", 2}};
  const PortConfig c = port_config_from_json(j, "port.json", builtin_fleet_dir()).value();
  EXPECT_GT(c.goals[0].hardware.peak_gflops, 0);
  ASSERT_TRUE(c.goals[0].max_memory_mb.has_value());
  EXPECT_DOUBLE_EQ(*c.goals[0].max_memory_mb, c.goals[0].hardware.memory_mb);
}

class PortRun : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::fashion_mnist_installed()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
    card_ = testing::write_zoo_model(dir_.path(), "base", "cnn_tiny", 0.8);
  }
  PortConfig config(const std::string& algorithm) {
    json j = {{"base_model", card_.card_path},
              {"algorithm", algorithm},
              {"channel_multiple", 1},
              {"train_images", 600},
              {"eval_images", 200},
              {"threads", 1},
              {"morphnet", {{"strength", 0.05}, {"max_steps", 400}, {"batch", 16}}},
              {"evolution", {{"population", 4}, {"generations", 2}, {"proxy_images", 100}}},
              {"finetune", {{"steps", 10}, {"batch", 16}}},
              {"goals",
               {{{"name", "g70"}, {"max_macs", arch_cost(base_spec()).macs * 7 / 10}},
                {{"name", "g40"}, {"max_macs", arch_cost(base_spec()).macs * 4 / 10}, {"max_params", arch_cost(base_spec()).params * 6 / 10}},
                {{"name", "pi"}, {"device", "raspberry-pi"}, {"max_latency_ms", 0.2}}}}};
    return port_config_from_json(j, "test", builtin_fleet_dir()).value();
  }
  ArchSpec base_spec() const { return arch_spec_from_json(card_.architecture_spec).value(); }

  testing::TempDir dir_;
  ModelCard card_;
};

// Every produced model meets its goal as measured on the produced file itself.
void expect_goals_met(const PortConfig& config, const PortResult& result, const std::string& out) {
  ASSERT_EQ(result.goals.size(), config.goals.size());
  for (std::size_t i = 0; i < config.goals.size(); ++i) {
    const auto& goal = config.goals[i];
    const ModelCard card = read_card(out + "/" + result.goals[i].card_file).value();
    auto module = torch::jit::load(out + "/" + card.file);
    const ArchSpec spec = arch_spec_of(module).value();
    module.eval();
    const ModelCost traced = torchscript_cost(module, {1, spec.in_channels, spec.input_size, spec.input_size}).value();
    if (goal.max_macs) EXPECT_LE(traced.macs, *goal.max_macs) << goal.name;
    if (goal.max_params) EXPECT_LE(traced.params, *goal.max_params) << goal.name;
    if (goal.max_latency_ms) EXPECT_LE(estimated_latency_ms(arch_cost(spec), goal.hardware).value(), *goal.max_latency_ms) << goal.name;
    EXPECT_TRUE(result.goals[i].constraints_met) << goal.name;
    EXPECT_EQ(card.macs, traced.macs);
    // Each variant also as ONNX, giving the TorchScript logits through OpenCV DNN.
    EXPECT_EQ(result.goals[i].onnx_error, "") << goal.name;
    EXPECT_TRUE(std::filesystem::exists(out + "/" + result.goals[i].onnx_file)) << goal.name;
    EXPECT_LT(result.goals[i].onnx_max_relative_error, 1e-4) << goal.name;
  }
}

TEST_F(PortRun, CollectiveMorphNetMeetsEveryGoalAndAdaptsAlongTheTree) {
  const PortConfig c = config("morphnet");
  const std::string out = dir_.file("morphnet");
  const PortResult result = run_port(c, out).value();
  expect_goals_met(c, result, out);
  EXPECT_EQ(result.goals[0].parent, "");
  EXPECT_EQ(result.goals[1].parent, "g70");  // the more demanding compute goal follows the lighter one
  EXPECT_TRUE(std::filesystem::exists(out + "/summary.md"));
  EXPECT_TRUE(std::filesystem::exists(out + "/port.json"));
}

TEST_F(PortRun, L1AndEvolutionExecutorsMeetEveryGoal) {
  for (const std::string algorithm : {"l1", "evolution"}) {
    const PortConfig c = config(algorithm);
    const std::string out = dir_.file(algorithm);
    const PortResult result = run_port(c, out).value();
    expect_goals_met(c, result, out);
  }
}

// A device whose profile carries a measured latency model (device calibrate --profile): its
// latency goal is priced by that model, not by the analytic one on its hardware.
TEST_F(PortRun, ALatencyGoalIsPricedByTheDevicesLatencyModel) {
  LatencyPredictor predictor;  // 1 ms per million MACs, nothing else: latency tracks MACs
  for (const char* type : {"add", "concat", "conv1x1", "convkxk", "dwconv", "elementwise", "linear", "pad", "pool"}) {
    predictor.optimized.coefficients[type] = {0.0, 1.0, 0.0, 0.0};
  }
  json profile = device_profile_to_json(find_device(builtin_fleet_dir(), "raspberry-pi").value());
  profile["latency_model"] = latency_predictor_to_json(predictor);
  testing::write_text(dir_.file("fleet/raspberry-pi.json"), profile.dump());
  const double base_ms = predict_latency_ms(predictor, card_).value();
  json j = {{"base_model", card_.card_path}, {"algorithm", "l1"}, {"channel_multiple", 1}, {"train_images", 300},
            {"eval_images", 100}, {"threads", 1}, {"finetune", {{"steps", 5}, {"batch", 16}}},
            {"goals", {{{"name", "pi"}, {"device", "raspberry-pi"}, {"max_latency_ms", base_ms * 0.6}}}}};
  const PortConfig config = port_config_from_json(j, "test", dir_.file("fleet")).value();
  ASSERT_TRUE(config.goals[0].latency_predictor);
  const PortResult result = run_port(config, dir_.file("out")).value();
  const ModelCard produced = read_card(dir_.file("out/") + result.goals[0].card_file).value();
  const double produced_ms = predict_latency_ms(predictor, produced).value();
  ASSERT_TRUE(result.goals[0].estimated_latency_ms.has_value());
  EXPECT_NEAR(*result.goals[0].estimated_latency_ms, produced_ms, 1e-9);  // priced from its kernels before it was built
  EXPECT_LE(produced_ms, base_ms * 0.6);
  EXPECT_GT(produced_ms, base_ms * 0.3);  // pruned as far as the budget asks, not further
  EXPECT_TRUE(result.goals[0].constraints_met);
}

TEST_F(PortRun, PrunedWidthsAreMultiplesOfTheChannelMultiple) {
  PortConfig c = config("l1");
  c.channel_multiple = 4;
  const std::string out = dir_.file("multiple");
  const PortResult result = run_port(c, out).value();
  expect_goals_met(c, result, out);
  const auto full = group_widths(base_spec());
  for (const auto& goal : result.goals) {
    const auto spec = arch_spec_of(torch::jit::load(out + "/" + goal.model_file)).value();
    for (const auto& [group, width] : group_widths(spec)) {
      EXPECT_TRUE(width % 4 == 0 || width == full.at(group)) << goal.goal << " " << group << " " << width;
    }
  }
}

TEST_F(PortRun, ARerunResumesFinishedGoalsAndAnotherConfigIsRefused) {
  const PortConfig c = config("l1");
  const std::string out = dir_.file("resume");
  ASSERT_TRUE(run_port(c, out).has_value());
  std::vector<std::string> stages;
  ASSERT_TRUE(run_port(c, out, [&](const PortProgress& p) { stages.push_back(p.stage); }).has_value());
  EXPECT_EQ(stages, std::vector<std::string>(c.goals.size(), "resumed"));
  PortConfig other = c;
  other.finetune.steps = 11;
  const auto refused = run_port(other, out);
  ASSERT_FALSE(refused.has_value());
  EXPECT_NE(refused.status().message().find("different config"), std::string::npos);
}

TEST_F(PortRun, AnAppendedGoalIsAdaptedFromItsPredecessorAndTheRestResumed) {
  const PortConfig c = config("l1");
  const std::string out = dir_.file("appended");
  ASSERT_TRUE(run_port(c, out).has_value());
  PortConfig more = c;
  PortGoal g20;
  g20.name = "g20";
  g20.max_macs = arch_cost(base_spec()).macs * 2 / 10;
  more.goals.push_back(g20);
  std::map<std::string, std::string> stages;
  const auto result = run_port(more, out, [&](const PortProgress& p) { stages[p.goal] = p.stage; });
  ASSERT_TRUE(result.has_value()) << result.status().to_string();
  EXPECT_EQ(stages["g70"], "resumed");
  EXPECT_EQ(stages["g40"], "resumed");
  EXPECT_EQ(stages["g20"], "fine-tuned");
  EXPECT_EQ(result->goals.back().parent, "g70");  // its nearest predecessor (g40 also bounds params), not the base
  EXPECT_TRUE(result->goals.back().constraints_met);
  // The original config still resumes in the folder that has grown.
  std::vector<std::string> again;
  ASSERT_TRUE(run_port(c, out, [&](const PortProgress& p) { again.push_back(p.stage); }).has_value());
  EXPECT_EQ(again, std::vector<std::string>(c.goals.size(), "resumed"));
}

TEST_F(PortRun, SensitivityOnAZooModelIsRefusedSayingWhatItNeeds) {
  const auto result = run_port(config("sensitivity"), dir_.file("zoo-sensitivity"));
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find("a model read through its graph on training photos"), std::string::npos)
      << result.status().message();
}

TEST_F(PortRun, AGoalNoArchitectureCanMeetIsRefusedBeforeAnyWork) {
  PortConfig c = config("l1");
  c.goals[0].max_macs = 10;
  const auto result = run_port(c, dir_.file("impossible"));
  ASSERT_FALSE(result.has_value());
  EXPECT_NE(result.status().message().find("cannot be met"), std::string::npos) << result.status().message();
}

}  // namespace
}  // namespace edgefleet

namespace edgefleet {
namespace {

// A classifier no sequential import can read (a Fire-style concatenation after batch-normed
// convs), saved with its card, and photos in train/ and val/ folders (one unreadable).
class PortGraphRun : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::jit::Module m("FireClassifier");
    m.register_attribute("training", c10::BoolType::get(), false);
    torch::manual_seed(3);
    auto param = [&](const std::string& name, std::vector<std::int64_t> shape, double scale) {
      m.register_parameter(name, torch::randn(shape) * scale, false);
    };
    param("c1_w", {32, 3, 3, 3}, 0.3);
    param("bn_w", {32}, 0.5);
    param("bn_b", {32}, 0.1);
    m.register_buffer("bn_rm", torch::zeros({32}));
    m.register_buffer("bn_rv", torch::ones({32}));
    param("e1_w", {32, 32, 1, 1}, 0.2);
    param("e3_w", {32, 32, 3, 3}, 0.1);
    param("fc_w", {2, 64}, 0.2);
    param("fc_b", {2}, 0.0);
    m.define(R"(
def forward(self, x):
  a = torch.relu(torch.batch_norm(torch.conv2d(x, self.c1_w, None, [2, 2], [1, 1], [1, 1], 1), self.bn_w, self.bn_b, self.bn_rm, self.bn_rv, self.training, 0.1, 1e-5, False))
  y = torch.cat([torch.relu(torch.conv2d(a, self.e1_w, None, [1, 1], [0, 0], [1, 1], 1)), torch.relu(torch.conv2d(a, self.e3_w, None, [1, 1], [1, 1], [1, 1], 1))], 1)
  return torch.linear(torch.flatten(torch.adaptive_avg_pool2d(y, [1, 1]), 1), self.fc_w, self.fc_b)
)");
    m.save(dir_.file("fire.pt"));
    const nlohmann::json card = {{"name", "fire"}, {"file", "fire.pt"}, {"format", "torchscript"}, {"classes", 2},
                                 {"input", {{"color", "rgb"}, {"height", 16}, {"width", 16}, {"range", {0, 1}}, {"resize", "exact"},
                                            {"interpolation", "area"}, {"layout", "NCHW"}}}};
    std::ofstream(dir_.file("fire.json")) << card.dump();
    for (const std::string split : {"train", "val"}) {
      for (int i = 0; i < 8; ++i) {
        testing::write_png(dir_.file(split + "/a/" + std::to_string(i) + ".png"), 20, 20, 3, i);
        testing::write_png(dir_.file(split + "/b/" + std::to_string(i) + ".png"), 20, 20, 3, 50 + i);
      }
    }
    testing::write_text(dir_.file("val/b/broken.png"), "not a picture");
    base_macs_ = torchscript_cost(m, {1, 3, 16, 16}).value().macs;
  }

  PortConfig config(const std::string& algorithm) const {
    const nlohmann::json j = {{"base_model", dir_.file("fire.json")},
                              {"dataset", dir_.file("train")},
                              {"validation", dir_.file("val")},
                              {"algorithm", algorithm},
                              {"threads", 1},
                              {"morphnet", {{"strength", 0.05}, {"max_steps", 200}, {"batch", 8}}},
                              {"finetune", {{"steps", 3}, {"batch", 8}}},
                              {"goals", {{{"name", "g70"}, {"max_macs", base_macs_ * 7 / 10}}, {{"name", "g40"}, {"max_macs", base_macs_ * 4 / 10}}}}};
    return port_config_from_json(j, "test", builtin_fleet_dir()).value();
  }

  testing::TempDir dir_;
  std::int64_t base_macs_ = 0;
};

TEST_F(PortGraphRun, ABranchingGraphPortsThroughItsChannelGroups) {
  for (const std::string algorithm : {"l1", "morphnet", "evolution", "sensitivity"}) {
    const PortConfig c = config(algorithm);
    const std::string out = dir_.file("out-" + algorithm);
    auto result = run_port(c, out);
    ASSERT_TRUE(result) << algorithm << ": " << result.status().to_string();
    EXPECT_NE(result->imported.find("read through its TorchScript graph"), std::string::npos) << result->imported;
    ASSERT_EQ(result->goals.size(), 2u);
    for (std::size_t i = 0; i < c.goals.size(); ++i) {
      const ModelCard card = read_card(out + "/" + result->goals[i].card_file).value();
      auto module = torch::jit::load(out + "/" + card.file);
      module.eval();
      const ModelCost traced = torchscript_cost(module, {1, 3, 16, 16}).value();
      EXPECT_LE(traced.macs, *c.goals[i].max_macs) << algorithm << " " << c.goals[i].name;
      EXPECT_EQ(card.macs, traced.macs) << algorithm;
      EXPECT_TRUE(result->goals[i].constraints_met) << algorithm << " " << c.goals[i].name;
    }
    // Evaluated on val/ (16 readable photos), the unreadable one skipped and listed.
    ASSERT_EQ(result->skipped.size(), 1u) << algorithm;
    EXPECT_NE(result->skipped[0].find("broken.png"), std::string::npos);
    // A rerun resumes from the folder.
    auto again = run_port(c, out);
    ASSERT_TRUE(again) << again.status().to_string();
    EXPECT_EQ(again->goals[1].cost.macs, result->goals[1].cost.macs);
  }
}

// The widths of the model a port wrote for `goal` in `out`, read through its graph.
std::map<std::string, int> ported_widths(const std::string& out, const std::string& goal) {
  auto module = torch::jit::load(out + "/" + goal + ".pt");
  module.eval();
  return graph_model(module, {1, 3, 16, 16}).value().graph->widths();
}

TEST_F(PortGraphRun, ACollectiveSensitivityChildContinuesItsParentsCurvesToTheWidthsOfAnIndependentSearch) {
  PortConfig c = config("sensitivity");
  c.channel_multiple = 1;  // curves measured from the parent's widths would reach other widths
  const std::string collective = dir_.file("sens-collective");
  auto together = run_port(c, collective);
  ASSERT_TRUE(together) << together.status().to_string();
  ASSERT_EQ(together->goals[1].parent, "g70");
  EXPECT_TRUE(std::filesystem::exists(collective + "/g70.search.json"));
  c.mode = PortMode::kIndependent;
  const std::string independent = dir_.file("sens-independent");
  ASSERT_TRUE(run_port(c, independent));
  const auto widths = ported_widths(independent, "g40");
  EXPECT_NE(widths, ported_widths(independent, "g70"));
  EXPECT_EQ(ported_widths(collective, "g40"), widths);
  // Resumed after g70 finished, g40 continues g70's saved curves as the uninterrupted run did.
  std::filesystem::remove(collective + "/g40.result.json");
  c.mode = PortMode::kCollective;
  ASSERT_TRUE(run_port(c, collective));
  EXPECT_EQ(ported_widths(collective, "g40"), widths);
}

TEST_F(PortGraphRun, FineTuningStopsOnAValidationPlateauAndKeepsTheBestWeights) {
  auto module = torch::jit::load(dir_.file("fire.pt"));
  torch::manual_seed(1);
  const TrainingData data{torch::rand({16, 3, 16, 16}), torch::randint(2, {16}, torch::kInt64)};
  FinetuneSettings s;
  s.steps = 100;
  s.batch = 4;
  s.learning_rate = 1e-12;  // nothing changes: no check can improve on the first
  s.patience = 2;
  s.check_every = 3;
  EXPECT_EQ(train_steps(module, data, s, 1, {}, {}, &data), 6);
  s.patience = 0;  // the fixed schedule
  s.steps = 20;
  EXPECT_EQ(train_steps(module, data, s, 1, {}, {}, &data), 20);
}

TEST_F(PortGraphRun, ARiseSmallerThanTheMinimumGainDoesNotRestartThePatience) {
  // Learnable: dark photos are class 0, bright ones class 1.
  torch::manual_seed(1);
  const auto labels = torch::arange(64, torch::kInt64).remainder(2);
  const TrainingData data{torch::rand({64, 3, 16, 16}) * 0.5 + 0.5 * labels.to(torch::kFloat).view({64, 1, 1, 1}), labels};
  FinetuneSettings s;
  s.steps = 200;
  s.batch = 8;
  s.learning_rate = 0.05;
  s.patience = 2;
  s.check_every = 5;
  auto module = torch::jit::load(dir_.file("fire.pt"));
  const int without_minimum = train_steps(module, data, s, 1, {}, {}, &data);
  EXPECT_GT(without_minimum, 10);  // some checks rose: each restarted the patience
  s.min_gain = 0.99;               // no rise can exceed 99 points
  module = torch::jit::load(dir_.file("fire.pt"));
  EXPECT_EQ(train_steps(module, data, s, 1, {}, {}, &data), 10);
}

TEST_F(PortGraphRun, AnInterruptedFineTuningResumesFromItsCheckpointToTheSameWeights) {
  torch::manual_seed(1);
  const TrainingData data{torch::rand({16, 3, 16, 16}), torch::randint(2, {16}, torch::kInt64)};
  const TrainingData validation{torch::rand({8, 3, 16, 16}), torch::randint(2, {8}, torch::kInt64)};
  FinetuneSettings s;
  s.steps = 40;
  s.batch = 4;
  s.learning_rate = 0.05;
  s.augment = true;
  s.patience = 100;  // checks every 5 steps, never stops early: the best weights are tracked throughout
  s.check_every = 5;
  auto teacher_module = torch::jit::load(dir_.file("fire.pt"));
  const TeacherProbabilities teacher = teacher_of(teacher_module, 2.0);

  auto straight = torch::jit::load(dir_.file("fire.pt"));
  ASSERT_EQ(train_steps(straight, data, s, 7, teacher, {}, &validation), 40);

  const FinetuneCheckpoint checkpoint{dir_.file("tune.ckpt"), 5};
  auto interrupted = torch::jit::load(dir_.file("fire.pt"));
  int calls = 0;
  const TeacherProbabilities killed_at_step_23 = [&](const torch::Tensor& x) {
    if (++calls == 24) throw Error(internal_error("simulated kill"));
    return teacher(x);
  };
  EXPECT_THROW(train_steps(interrupted, data, s, 7, killed_at_step_23, {}, &validation, &checkpoint), Error);
  ASSERT_TRUE(std::filesystem::exists(checkpoint.file));
  auto resumed = torch::jit::load(dir_.file("fire.pt"));  // a fresh process: the untrained model
  int resumed_calls = 0;
  const TeacherProbabilities counted = [&](const torch::Tensor& x) {
    ++resumed_calls;
    return teacher(x);
  };
  EXPECT_EQ(train_steps(resumed, data, s, 7, counted, {}, &validation, &checkpoint), 40);
  EXPECT_EQ(resumed_calls, 20);  // steps 20-39: continued from the checkpoint written at step 20
  const auto a = straight.parameters();
  const auto b = resumed.parameters();
  for (auto i = a.begin(), j = b.begin(); i != a.end(); ++i, ++j) EXPECT_TRUE(torch::equal(*i, *j));

  // The checkpoint left there is of another recipe than this one's: not continued, the run starts over.
  FinetuneSettings other = s;
  other.learning_rate = 0.01;
  auto straight_other = torch::jit::load(dir_.file("fire.pt"));
  train_steps(straight_other, data, other, 7, teacher, {}, &validation);
  ASSERT_TRUE(std::filesystem::exists(checkpoint.file));
  auto restarted = torch::jit::load(dir_.file("fire.pt"));
  resumed_calls = 0;
  train_steps(restarted, data, other, 7, counted, {}, &validation, &checkpoint);
  EXPECT_EQ(resumed_calls, 40);
  const auto c = straight_other.parameters();
  const auto d = restarted.parameters();
  for (auto i = c.begin(), j = d.begin(); i != c.end(); ++i, ++j) EXPECT_TRUE(torch::equal(*i, *j));
}

TEST_F(PortGraphRun, ChainedFineTuningAlongTheTreeRunsAndResumes) {
  nlohmann::json j = port_config_to_json(config("l1"));
  j["finetune"] = {{"steps", 12}, {"batch", 4}, {"patience", 1}, {"check_every", 3}, {"from_parent", true}};
  j["evolution"]["proxy_images"] = 4;
  const PortConfig c = port_config_from_json(j, "test", builtin_fleet_dir()).value();
  EXPECT_TRUE(c.finetune_from_parent);
  const std::string out = dir_.file("chained");
  auto result = run_port(c, out);
  ASSERT_TRUE(result) << result.status().to_string();
  EXPECT_EQ(result->goals[1].parent, "g70");
  for (const auto& g : result->goals) {
    EXPECT_GE(g.finetune_steps, 3) << g.goal;
    EXPECT_LE(g.finetune_steps, 12) << g.goal;
  }
  std::vector<std::string> stages;
  auto again = run_port(c, out, [&](const PortProgress& p) { stages.push_back(p.stage); });
  ASSERT_TRUE(again) << again.status().to_string();
  EXPECT_EQ(stages, std::vector<std::string>(2, "resumed"));
  EXPECT_EQ(again->goals[1].finetune_steps, result->goals[1].finetune_steps);
  // A goal the parent's fine-tuned model already meets (g70's MACs, any parameter count) is
  // that model, taken as it is: no fine-tuning.
  j["goals"].push_back({{"name", "g70-any-params"}, {"max_macs", base_macs_ * 7 / 10}, {"max_params", 1000000000}});
  auto appended = run_port(port_config_from_json(j, "test", builtin_fleet_dir()).value(), dir_.file("chained-appended"));
  ASSERT_TRUE(appended) << appended.status().to_string();
  ASSERT_EQ(appended->goals[2].parent, "g70");
  EXPECT_EQ(appended->goals[2].finetune_steps, 0);
  EXPECT_EQ(appended->goals[2].cost.macs, appended->goals[0].cost.macs);
  EXPECT_EQ(appended->goals[2].accuracy, appended->goals[0].accuracy);
  // Distilled from the parent's fine-tuned model: the child's card names its teacher.
  j["finetune"]["teacher"] = "parent";
  auto from_parent = run_port(port_config_from_json(j, "test", builtin_fleet_dir()).value(), dir_.file("chained-teacher"));
  ASSERT_TRUE(from_parent) << from_parent.status().to_string();
  EXPECT_EQ(read_card(dir_.file("chained-teacher/g40.json")).value().training["teacher"], "g70");
  EXPECT_EQ(read_card(dir_.file("chained-teacher/g70.json")).value().training["teacher"], "base");
  j["finetune"].erase("from_parent");
  const auto no_parent_model = port_config_from_json(j, "test", builtin_fleet_dir());
  ASSERT_FALSE(no_parent_model);
  EXPECT_NE(no_parent_model.status().message().find("needs finetune.from_parent"), std::string::npos) << no_parent_model.status().to_string();
  j["finetune"]["from_parent"] = true;
  j["finetune"].erase("teacher");
  // Too few training images to hold some out for the plateau: refused with the reason.
  j["evolution"]["proxy_images"] = 1000;
  auto refused = run_port(port_config_from_json(j, "test", builtin_fleet_dir()).value(), dir_.file("refused"));
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.status().message().find("finetune.patience"), std::string::npos) << refused.status().to_string();
}

}  // namespace
}  // namespace edgefleet
