// Porting benchmarks, printed as Markdown:
//  1. building the goal tree for 1000 goals with 4 constraints (the paper: 37 ms);
//  2. batch-1 latency of zoo models pruned (L1, physical removal) to <= 50% of their MACs vs
//     the unpruned model, both loaded through edgefleet's Classifier, in the same run;
//  3. the latency cost model (sum and roofline) against latency measured here, for the zoo,
//     on this machine's hardware as measured here (GEMM peak, copy bandwidth).
// Usage: bench_port [MODELS_DIR]   (default models/fashion-mnist)
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <random>

#include "edgefleet/arch_cost.h"
#include "edgefleet/classifier.h"
#include "edgefleet/goal_tree.h"
#include "edgefleet/latency.h"
#include "edgefleet/model_card.h"
#include "edgefleet/sha256.h"
#include "port/channel_pruning.h"
#include "zoo/module_builder.h"

namespace fs = std::filesystem;
using namespace edgefleet;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void goal_tree_timing() {
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> budget(0.0, 1.0);
  std::cout << "## Goal tree\n\n| goals | constraints | median ms (of 50) | roots | deepest path |\n|---:|---:|---:|---:|---:|\n";
  for (int n : {1000, 10000}) {
    std::vector<std::vector<double>> demands(static_cast<std::size_t>(n), std::vector<double>(4));
    for (auto& d : demands)
      for (auto& v : d) v = -budget(rng);
    std::vector<double> ms;
    GoalTree tree;
    for (int rep = 0; rep < 50; ++rep) {
      const auto start = std::chrono::steady_clock::now();
      tree = build_goal_tree(demands);
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
    int deepest = 0;
    for (int g = 0; g < n; ++g) {
      int depth = 1;
      for (int p = tree.parent[g]; p >= 0; p = tree.parent[p]) ++depth;
      deepest = std::max(deepest, depth);
    }
    std::cout << "| " << n << " | 4 | " << median(ms) << " | " << tree.roots.size() << " | " << deepest << " |\n";
  }
  std::cout << "\n";
}

// Prunes `base` with L1 norms to at most `fraction` of its MACs, widths a multiple of `multiple`.
PrunableModel prune_to(const PrunableModel& base, double fraction, int multiple) {
  const auto norms = filter_l1_norms(base);
  const auto budget = static_cast<std::int64_t>(fraction * static_cast<double>(arch_cost(base.spec).macs));
  for (double ratio = 1.0; ratio > 0.01; ratio *= 0.98) {
    std::map<std::string, std::vector<std::int64_t>> keep;
    std::map<std::string, int> widths;
    for (const auto& [group, norm] : norms) {
      const int full = static_cast<int>(norm.size(0));
      int w = static_cast<int>(std::lround(full * ratio / multiple)) * multiple;
      w = std::clamp(w, std::min(multiple, full), full);
      widths[group] = w;
      keep[group] = top_channels(norm, w);
    }
    if (arch_cost(spec_with_widths(base.spec, widths).value()).macs <= budget) return prune_channels(base, keep).value();
  }
  throw std::runtime_error("cannot prune to the budget");
}

ModelCard save_variant(const ModelCard& base, PrunableModel& model, const std::string& dir, const std::string& name) {
  model.module.eval();
  const std::string pt = dir + "/" + name + ".pt";
  model.module.save(pt);
  ModelCard card = base;
  card.name = name;
  card.file = name + ".pt";
  card.sha256 = sha256_file(pt).value();
  card.architecture_spec = nlohmann::json(model.spec);
  const Status s = write_card(card, dir + "/" + name + ".json");
  if (!s.is_ok()) throw std::runtime_error(s.to_string());
  return read_card(dir + "/" + name + ".json").value();
}

double latency_ms(const ModelCard& card) {
  auto classifier = load_classifier(card).value();
  std::vector<double> medians;
  for (int round = 0; round < 5; ++round) medians.push_back(measure_latency(*classifier, 1, 20, 200).value().median_ms);
  return median(medians);
}

void pruning_speed(const std::string& models, const std::string& tmp) {
  std::cout << "## Pruned to <= 50% MACs: batch-1 latency (median of 5 x 200 runs, " << torch::get_num_threads() << " threads)\n\n";
  std::cout << "| model | widths | base MACs | pruned MACs | MACs kept | base ms | pruned ms | speed-up |\n|---|---|---:|---:|---:|---:|---:|---:|\n";
  for (const std::string name : {"cnn_plain", "mobilenetv2_w100", "resnet_s"}) {
    const ModelCard card = read_card(models + "/" + name + ".json").value();
    PrunableModel base;
    base.module = torch::jit::load(models + "/" + card.file);
    base.spec = arch_spec_of(base.module).value();
    const double base_ms = latency_ms(card);
    for (int multiple : {1, 8}) {
      PrunableModel pruned = prune_to(base, 0.5, multiple);
      const ModelCard pruned_card = save_variant(card, pruned, tmp, name + "_half_" + std::to_string(multiple));
      const double ms = latency_ms(pruned_card);
      const auto base_macs = arch_cost(base.spec).macs;
      const auto macs = arch_cost(pruned.spec).macs;
      std::cout << "| " << name << " | " << (multiple == 1 ? "any" : "multiples of 8") << " | " << base_macs << " | " << macs << " | "
                << 100.0 * macs / base_macs << "% | " << base_ms << " | " << ms << " | " << base_ms / ms << "x |\n";
    }
  }
  std::cout << "\n";
}

Hardware this_machine() {
  Hardware hw;
  hw.soc = "this machine (measured)";
  torch::NoGradGuard no_grad;
  const auto a = torch::rand({1024, 1024});
  const auto b = torch::rand({1024, 1024});
  std::vector<double> s;
  for (int i = 0; i < 20; ++i) {
    const auto start = std::chrono::steady_clock::now();
    auto c = torch::mm(a, b);
    s.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  hw.peak_gflops = 2.0 * 1024 * 1024 * 1024 / median(s) / 1e9;
  const auto big = torch::rand({64 * 1024 * 1024});
  auto copy = torch::empty_like(big);
  s.clear();
  for (int i = 0; i < 10; ++i) {
    const auto start = std::chrono::steady_clock::now();
    copy.copy_(big);
    s.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  hw.memory_bandwidth_gbs = 2.0 * 4 * 64 * 1024 * 1024 / median(s) / 1e9;  // read + write
  return hw;
}

void cost_model_validation(const std::string& models) {
  const Hardware hw = this_machine();
  std::cout << "## Latency cost model vs measured (this machine: " << hw.peak_gflops << " GFLOP/s GEMM, " << hw.memory_bandwidth_gbs
            << " GB/s copy)\n\n| model | MACs | measured ms | sum-model ms | error | roofline ms | error |\n|---|---:|---:|---:|---:|---:|---:|\n";
  double sum_error = 0, roof_error = 0;
  int n = 0;
  for (const auto& entry : fs::directory_iterator(models)) {
    const std::string path = entry.path().string();
    if (entry.path().extension() != ".json" || path.find(".onnx") != std::string::npos) continue;
    const ModelCard card = read_card(path).value();
    if (card.architecture_spec.is_null()) continue;
    const ArchCost cost = arch_cost(arch_spec_from_json(card.architecture_spec).value());
    const double measured = latency_ms(card);
    const double sum = estimated_latency_ms(cost, hw, LatencyModel::kSum).value();
    const double roof = estimated_latency_ms(cost, hw, LatencyModel::kRoofline).value();
    sum_error += std::abs(sum / measured - 1);
    roof_error += std::abs(roof / measured - 1);
    ++n;
    std::cout << "| " << card.name << " | " << cost.macs << " | " << measured << " | " << sum << " | " << 100 * (sum / measured - 1) << "% | "
              << roof << " | " << 100 * (roof / measured - 1) << "% |\n";
  }
  std::cout << "\nmean absolute error: sum model " << 100 * sum_error / n << "%, roofline " << 100 * roof_error / n << "%\n\n";
}

}  // namespace

int main(int argc, char** argv) {
  const std::string models = argc > 1 ? argv[1] : "models/fashion-mnist";
  const std::string tmp = (fs::temp_directory_path() / ("edgefleet-port-bench-" + std::to_string(::getpid()))).string();
  fs::create_directories(tmp);
  std::cout.setf(std::ios::fixed);
  std::cout.precision(3);
  try {
    goal_tree_timing();
    pruning_speed(models, tmp);
    cost_model_validation(models);
  } catch (const std::exception& e) {
    std::cerr << "bench_port: " << e.what() << "\n";
    fs::remove_all(tmp);
    return 1;
  }
  fs::remove_all(tmp);
  return 0;
}
