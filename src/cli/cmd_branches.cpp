// edgefleet branches: multi-branch models (Mistify §6) — build one, and run the switching
// load test against reloading separate models (the paper's Table 4).
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/cli_common.h"
#include "edgefleet/adaptive_runtime.h"
#include "edgefleet/dataset.h"
#include "edgefleet/multi_branch.h"

namespace edgefleet::cli {
namespace {

struct BranchesArgs {
  MultiBranchOptions build;
  std::string budgets;
  std::string out;
  std::string model;
  SwitchLoadOptions load;
  BudgetDropOptions drop;
  std::string json_out;
};

Expected<std::vector<float>> test_images(std::size_t count) {
  auto test = open_fashion_mnist(FashionMnistSplit::kTest);
  if (!test) return test.status();
  std::vector<float> images;
  for (std::size_t i = 0; i < count && i < (*test)->size(); ++i) {
    auto image = (*test)->load(i);
    if (!image) return image.status();
    for (auto p : image->pixels) images.push_back(p / 255.0f);
  }
  return images;
}

Expected<std::vector<double>> parse_budgets(const std::string& text) {
  std::vector<double> budgets;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    std::size_t used = 0;
    double v = 0;
    try {
      v = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || !(v > 0 && v <= 1)) return invalid_argument("--budgets: '" + item + "' is not a fraction in (0, 1]");
    budgets.push_back(v);
  }
  if (budgets.empty()) return invalid_argument("--budgets: give at least one fraction");
  return budgets;
}

int run_build(BranchesArgs& args) {
  if (!args.budgets.empty()) {
    auto budgets = parse_budgets(args.budgets);
    if (!budgets) return fail(budgets.status());
    args.build.budgets = *budgets;
  }
  auto build = build_multi_branch(args.build, args.out);
  if (!build) return fail(build.status());
  std::vector<std::vector<std::string>> rows;
  for (const auto& b : build->branches) {
    rows.push_back({std::to_string(b.index), fixed(100 * b.budget, 1), human_count(static_cast<double>(b.macs)), b.budget_met ? "yes" : "no (narrowest)",
                    human_count(static_cast<double>(b.params)), fixed(100 * b.accuracy, 2)});
  }
  std::cout << format_table({"branch", "budget % of source MACs", "MACs", "met", "params", "top-1 %"}, rows) << "base params " << build->base_params
            << ", all branches + base " << build->total_params << "\n" << args.out << "\n";
  return 0;
}

int run_bench(const BranchesArgs& args) {
  auto images = test_images(256);
  if (!images) return fail(images.status());
  auto result = run_switch_load(args.model, *images, args.load);
  if (!result) return fail(result.status());
  const SwitchLoadResult& r = *result;
  std::vector<std::vector<std::string>> rows;
  for (std::size_t b = 0; b < r.reload_ms.size(); ++b) {
    rows.push_back({std::to_string(b), fixed(r.branch_latency_ms[b], 3), fixed(r.reload_ms[b], 2)});
  }
  std::cout << "load run: " << r.requests << " requests in " << args.load.seconds << " s by " << args.load.clients << " clients, " << r.failed
            << " failed, " << r.switches << " switches (every " << args.load.switch_every_ms << " ms)\n"
            << "switch call: median " << fixed(r.switch_median_us, 3) << " us, max " << fixed(r.switch_max_us, 3) << " us; first inference after a switch "
            << fixed(r.first_after_switch_ms, 3) << " ms vs " << fixed(r.steady_ms, 3) << " ms otherwise (median)\n"
            << format_table({"branch", "latency ms (median)", "reload + first inference ms"}, rows) << "params held: " << r.total_params << " (additional / original: "
            << r.total_params - r.middle_params << " / " << r.middle_params << ")\n";
  if (!args.json_out.empty()) {
    nlohmann::json j{{"requests", r.requests}, {"failed", r.failed}, {"switches", r.switches}, {"switch_median_us", r.switch_median_us},
                     {"switch_max_us", r.switch_max_us}, {"first_after_switch_ms", r.first_after_switch_ms}, {"steady_ms", r.steady_ms},
                     {"branch_latency_ms", r.branch_latency_ms}, {"reload_ms", r.reload_ms}, {"total_params", r.total_params}, {"middle_params", r.middle_params}};
    std::ofstream(args.json_out) << j.dump(2) << "\n";
  }
  return r.failed == 0 ? 0 : fail(internal_error(std::to_string(r.failed) + " requests failed during switching"));
}

int run_scenario(BranchesArgs& args) {
  auto images = test_images(256);
  if (!images) return fail(images.status());
  args.drop.multi_branch_file = args.model;
  auto result = run_budget_drop(args.drop, *images);
  if (!result) return fail(result.status());
  const BudgetDropResult& r = *result;
  std::cout << "target " << fixed(r.target_ms, 3) << " ms; the compute budget drops to " << fixed(100 * args.drop.compute_share, 0) << "% at "
            << args.drop.drop_at << " s; branches unloaded:";
  for (std::size_t b = 0; b < r.branch_ms.size(); ++b) std::cout << " " << b << ": " << fixed(r.branch_ms[b], 3) << " ms";
  std::cout << "\n\nevents:\n";
  for (const auto& e : r.events) std::cout << "  " << fixed(e.seconds, 2) << " s  " << e.what << ": " << e.detail << " (recent median " << fixed(e.median_ms, 3) << " ms)\n";
  std::cout << "\ntimeline (every " << args.drop.sample_every_ms << " ms, recent median):\n";
  std::string last_model;
  for (const auto& s : r.timeline) {
    if (s.model != last_model || &s == &r.timeline.back() || static_cast<int>(s.seconds * 4) % 20 == 0) {
      std::cout << "  " << fixed(s.seconds, 2) << " s  " << fixed(s.median_ms, 3) << " ms  " << s.model << (s.median_ms > r.target_ms ? "  over target" : "") << "\n";
    }
    last_model = s.model;
  }
  std::cout << "\nbefore the drop " << fixed(r.before_drop_ms, 3) << " ms, worst after it " << fixed(r.worst_ms, 3) << " ms, at the end " << fixed(r.final_ms, 3)
            << " ms on " << r.final_model << " (target " << fixed(r.target_ms, 3) << " ms); " << r.requests << " inferences, " << r.failed << " failed\n";
  if (!args.json_out.empty()) {
    nlohmann::json events = nlohmann::json::array(), timeline = nlohmann::json::array();
    for (const auto& e : r.events) events.push_back({{"seconds", e.seconds}, {"what", e.what}, {"detail", e.detail}, {"median_ms", e.median_ms}});
    for (const auto& s : r.timeline) timeline.push_back({{"seconds", s.seconds}, {"median_ms", s.median_ms}, {"model", s.model}});
    std::ofstream(args.json_out) << nlohmann::json{{"target_ms", r.target_ms}, {"branch_ms", r.branch_ms}, {"before_drop_ms", r.before_drop_ms}, {"worst_ms", r.worst_ms},
                                                   {"final_ms", r.final_ms}, {"final_model", r.final_model}, {"requests", r.requests},
                                                   {"failed", r.failed}, {"events", events}, {"timeline", timeline}}
                                        .dump(2)
                                 << "\n";
  }
  if (r.failed > 0) return fail(internal_error(std::to_string(r.failed) + " inferences failed"));
  if (r.final_ms > r.target_ms) return fail(internal_error("latency did not return under the target"));
  return 0;
}

}  // namespace

Runner add_branches_command(CLI::App& app) {
  auto args = std::make_shared<BranchesArgs>();
  auto* branches = app.add_subcommand("branches", "Multi-branch models: a frozen base and branches for budgets, switched without reloading (Mistify §6)");
  branches->require_subcommand(1);
  auto* build = branches->add_subcommand("build", "Build a multi-branch model from a zoo model on Fashion-MNIST");
  build->add_option("--model", args->build.source_model, "Source zoo model (name or card)")->capture_default_str();
  build->add_option("--out", args->out, "Output .pt (standalone .branchN.pt files are written beside it)")->required();
  build->add_option("--budgets", args->budgets, "MACs fractions of the source, comma-separated (default 0.111,0.333,1: 1/3x, 1x, 3x of the middle)");
  build->add_option("--base-layers", args->build.base_layers, "Layers in the shared base")->capture_default_str();
  build->add_option("--steps", args->build.finetune.steps, "Fine-tuning steps per branch")->capture_default_str();
  build->add_option("--train-images", args->build.train_images, "Training images for fine-tuning")->capture_default_str();
  build->add_option("--eval-images", args->build.eval_images, "Test images for accuracy")->capture_default_str();
  auto* bench = branches->add_subcommand("bench", "Load run with branch switching; switch time vs loading a separate model");
  bench->add_option("--model", args->model, "Multi-branch .pt")->required();
  bench->add_option("--seconds", args->load.seconds, "Length of the load run")->capture_default_str();
  bench->add_option("--clients", args->load.clients, "Inferring threads")->capture_default_str();
  bench->add_option("--switch-every-ms", args->load.switch_every_ms, "Switch interval")->capture_default_str();
  bench->add_option("--json", args->json_out, "Also write the figures as JSON here");
  auto* scenario = branches->add_subcommand("scenario", "Scripted budget drop: the monitor switches branch, re-adapts through a port server, swaps");
  scenario->add_option("--model", args->model, "Multi-branch .pt")->required();
  scenario->add_option("--port-url", args->drop.monitor.port_url, "URL of 'edgefleet port --serve' (none: switch only)");
  scenario->add_option("--target-ms", args->drop.monitor.target_ms, "Latency target (0 = 1.5x the widest branch unloaded)")->capture_default_str();
  scenario->add_option("--seconds", args->drop.seconds, "Length of the run")->capture_default_str();
  scenario->add_option("--drop-at", args->drop.drop_at, "When the compute budget drops")->capture_default_str();
  scenario->add_option("--compute-share", args->drop.compute_share, "The device's compute share after the drop (inference stretched to 1/share)")->capture_default_str();
  scenario->add_option("--window", args->drop.monitor.window, "Inferences in the monitor's median")->capture_default_str();
  scenario->add_option("--json", args->json_out, "Also write the events and timeline as JSON here");
  return [args, build, bench, scenario]() {
    if (build->parsed()) return run_build(*args);
    if (bench->parsed()) return run_bench(*args);
    if (scenario->parsed()) return run_scenario(*args);
    return 2;
  };
}

}  // namespace edgefleet::cli
