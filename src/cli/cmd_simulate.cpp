// edgefleet simulate --zoo Z --network SPEC --sla FROM:TO:STEP [--policy P...] [--out DIR]
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/cli_common.h"
#include "edgefleet/plot.h"
#include "edgefleet/selection.h"
#include "edgefleet/simulator.h"

namespace edgefleet::cli {
namespace {

struct SimulateArgs {
  std::string zoo = "paper-table3";
  std::string network = "normal:100:50";
  std::string network_sample = "round-trip";
  std::string sla = "50:300:10";
  std::vector<std::string> policies;
  int requests = 10000;
  std::uint64_t seed = 1;
  bool no_duplicate = false;
  double duplicate_above = 0.0;
  std::string out;
};

// "250", "50,100,250" or "FROM:TO:STEP" (inclusive).
Expected<std::vector<double>> parse_slas(const std::string& text) {
  auto number = [&](const std::string& s) -> double {
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0' || !(v > 0)) throw Error(invalid_argument("--sla: '" + s + "' is not a positive number of ms"));
    return v;
  };
  return capture([&]() -> std::vector<double> {
    std::vector<double> out;
    const auto first = text.find(':');
    if (first != std::string::npos) {
      const auto second = text.find(':', first + 1);
      if (second == std::string::npos) throw Error(invalid_argument("--sla '" + text + "': expected FROM:TO:STEP"));
      const double from = number(text.substr(0, first));
      const double to = number(text.substr(first + 1, second - first - 1));
      const double step = number(text.substr(second + 1));
      if (to < from) throw Error(invalid_argument("--sla '" + text + "': TO is smaller than FROM"));
      if ((to - from) / step > 100000) throw Error(invalid_argument("--sla '" + text + "': more than 100000 points"));
      for (double v = from; v <= to + 1e-9; v += step) out.push_back(v);
      return out;
    }
    std::size_t begin = 0;
    while (begin <= text.size()) {
      const auto comma = text.find(',', begin);
      out.push_back(number(text.substr(begin, comma == std::string::npos ? std::string::npos : comma - begin)));
      if (comma == std::string::npos) break;
      begin = comma + 1;
    }
    return out;
  });
}

// The paper's Figs. 3, 6 and 7: each metric against the SLA, one line per policy, and the
// model usage of MDInference (Fig. 3b).
void write_plots(const ZooProfile& zoo, const std::vector<SimulationRow>& rows, const std::string& dir) {
  struct Metric {
    const char* file;
    const char* label;
    double (*value)(const SimulationRow&);
  };
  const Metric metrics[] = {
      {"aggregate_accuracy.svg", "aggregate accuracy (%)", [](const SimulationRow& r) { return 100 * r.aggregate_accuracy; }},
      {"sla_attainment.svg", "SLA attainment (%)", [](const SimulationRow& r) { return 100 * r.sla_attainment; }},
      {"on_device_reliance.svg", "on-device reliance (%)", [](const SimulationRow& r) { return 100 * r.on_device_reliance; }},
      {"mean_latency.svg", "mean end-to-end latency (ms)", [](const SimulationRow& r) { return r.mean_latency_ms; }},
  };
  for (const auto& metric : metrics) {
    LinePlot plot{std::string(metric.label) + " vs SLA, zoo " + zoo.name, "SLA (ms)", metric.label, {}};
    for (const auto& r : rows) plot.series[r.policy].emplace_back(r.sla_ms, metric.value(r));
    const Status written = write_line_plot_svg(plot, dir + "/" + metric.file);
    if (!written.is_ok()) {
      std::cerr << "edgefleet: " << written.to_string() << "\n";
      return;
    }
  }
  LinePlot usage{"model usage of mdinference, zoo " + zoo.name, "SLA (ms)", "requests (%)", {}};
  for (const auto& r : rows) {
    if (r.policy != "mdinference") continue;
    for (std::size_t i = 0; i < r.usage.size(); ++i) usage.series[zoo.variants[i].name].emplace_back(r.sla_ms, 100 * r.usage[i]);
  }
  if (!usage.series.empty()) {
    const Status written = write_line_plot_svg(usage, dir + "/model_usage_mdinference.svg");
    if (!written.is_ok()) std::cerr << "edgefleet: " << written.to_string() << "\n";
  }
}

int run(const SimulateArgs& args) {
  auto zoo = read_zoo_profile(args.zoo);
  if (!zoo) return fail(zoo.status());
  const NetworkSample sample = args.network_sample == network_sample_name(NetworkSample::kInput) ? NetworkSample::kInput
                                                                                                 : NetworkSample::kRoundTrip;
  auto network = parse_network_model(args.network, sample);
  if (!network) return fail(network.status());
  auto slas = parse_slas(args.sla);
  if (!slas) return fail(slas.status());
  SimulationConfig config;
  config.policies = args.policies;
  config.slas_ms = *slas;
  config.requests = args.requests;
  config.seed = args.seed;
  config.duplicate = !args.no_duplicate;
  config.duplicate_above_miss_probability = args.duplicate_above;
  auto rows = simulate(*zoo, **network, config);
  if (!rows) return fail(rows.status());

  std::vector<std::vector<std::string>> table;
  for (const auto& r : *rows) {
    table.push_back({r.policy, fixed(r.sla_ms, 0), fixed(100 * r.aggregate_accuracy, 2), fixed(100 * r.sla_attainment, 2),
                     fixed(100 * r.on_device_reliance, 2), fixed(100 * r.local_runs, 2), fixed(r.mean_latency_ms, 1),
                     fixed(r.p99_latency_ms, 1)});
  }
  std::cout << "zoo " << zoo->name << ", network " << (*network)->describe() << ", " << args.requests
            << " requests per point, duplication " << (config.duplicate ? "on" : "off") << "\n"
            << format_table({"policy", "SLA ms", "accuracy %", "SLA met %", "on-device %", "local runs %", "mean ms", "p99 ms"}, table);
  if (!args.out.empty()) {
    std::filesystem::create_directories(args.out);
    const nlohmann::json results = simulation_rows_to_json(*zoo, *rows);
    std::ofstream(args.out + "/results.json") << results.dump(1) << "\n";
    std::ofstream csv(args.out + "/results.csv");
    csv << "policy,sla_ms,aggregate_accuracy,sla_attainment,on_device_reliance,mean_latency_ms,p50_latency_ms,p95_latency_ms,p99_latency_ms\n";
    for (const auto& r : *rows) {
      csv << r.policy << "," << r.sla_ms << "," << r.aggregate_accuracy << "," << r.sla_attainment << ","
          << r.on_device_reliance << "," << r.mean_latency_ms << "," << r.p50_latency_ms << "," << r.p95_latency_ms << ","
          << r.p99_latency_ms << "\n";
    }
    nlohmann::json run = {{"zoo", zoo_profile_to_json(*zoo)}, {"network", (*network)->describe()}, {"requests", args.requests},
                          {"seed", args.seed}, {"duplicate", config.duplicate}};
    std::ofstream(args.out + "/run.json") << run.dump(1) << "\n";
    if (!csv) return fail(io_error("cannot write results into '" + args.out + "'"));
    write_plots(*zoo, *rows, args.out);
    std::cout << "wrote " << args.out << "/results.json, results.csv, run.json and SVG plots\n";
  }
  return 0;
}

}  // namespace

Runner add_simulate_command(CLI::App& app) {
  auto args = std::make_shared<SimulateArgs>();
  auto* sim = app.add_subcommand("simulate", "Simulate SLA-aware model selection (MDInference) over a network model");
  sim->add_option("--zoo", args->zoo, "Zoo profile file, or built-in: paper-table3, paper-table3-fictional")->capture_default_str();
  sim->add_option("--network", args->network, "normal:MEAN_MS:STD_MS, cv:MEAN_MS:CV or trace:FILE")->capture_default_str();
  sim->add_option("--network-sample", args->network_sample,
                  "What a network time is: round-trip (T_nw itself) or input (T_input; T_nw = 2 x T_input, the paper's reading)")
      ->capture_default_str()->check(CLI::IsMember(network_sample_names()));
  sim->add_option("--sla", args->sla, "SLA in ms: N, N,M,... or FROM:TO:STEP")->capture_default_str();
  sim->add_option("--policy", args->policies, "Policies to run (default: all seven)")->check(CLI::IsMember(policy_names()));
  sim->add_option("--requests", args->requests, "Requests per (policy, SLA) point")->check(CLI::PositiveNumber)->capture_default_str();
  sim->add_option("--seed", args->seed, "Random seed")->capture_default_str();
  sim->add_flag("--no-duplicate", args->no_duplicate, "Do not race the on-device model");
  sim->add_option("--duplicate-above", args->duplicate_above,
                  "Race the on-device model only when the client's network estimate gives a remote miss a probability above "
                  "this (0 = on every request, the paper)")
      ->capture_default_str()->check(CLI::Range(0.0, 0.999999));
  sim->add_option("--out", args->out, "Write results.json, results.csv, run.json and SVG plots here");
  return [args] { return run(*args); };
}

}  // namespace edgefleet::cli
