// edgefleet port: tailor one zoo model into a suite of variants, one per goal.
#include <iostream>

#include "cli/cli_common.h"
#include "edgefleet/device_profile.h"
#include "edgefleet/port.h"
#include "edgefleet/port_server.h"

namespace edgefleet::cli {
namespace {

struct PortArgs {
  std::string config;
  std::string out;
  std::string fleet = "builtin";
  std::string mode;
  std::string algorithm;
  bool serve = false;
  std::string host = "127.0.0.1";
  int port = 0;
};

void print_progress(const PortProgress& p) {
  std::cout << p.goal << ": " << p.stage;
  if (p.seconds > 0) std::cout << " (" << fixed(p.seconds, 1) << " s)";
  std::cout << std::endl;
}

// Batch port first, then goals over HTTP until SIGINT or SIGTERM.
int serve(const PortConfig& config, const PortArgs& args) {
  block_stop_signals();
  PortServerOptions options;
  options.out_dir = args.out;
  options.fleet_dir = args.fleet;
  options.host = args.host;
  options.port = args.port;
  options.on_progress = print_progress;
  auto server = PortServer::start(config, options);
  if (!server) return fail(server.status());
  std::cout << "listening on " << (*server)->url() << std::endl;
  wait_for_stop_signal();
  return 0;
}

int run(const PortArgs& args) {
  auto config = read_port_config(args.config, args.fleet);
  if (!config) return fail(config.status());
  // The parser has checked both names.
  if (!args.mode.empty()) config->mode = parse_port_mode(args.mode).value();
  if (!args.algorithm.empty()) config->algorithm = parse_port_algorithm(args.algorithm).value();
  if (args.serve) return serve(*config, args);
  auto result = run_port(*config, args.out, print_progress);
  if (!result) return fail(result.status());
  for (const auto& s : result->skipped) std::cerr << "edgefleet: skipped " << s << "\n";
  std::cout << "\n" << port_summary_markdown(*config, *result) << "\n" << args.out << "/summary.md\n";
  for (const auto& g : result->goals) {
    if (!g.constraints_met) return fail(internal_error("goal '" + g.goal + "' was not met (see the table)"));
  }
  return 0;
}

}  // namespace

Runner add_port_command(CLI::App& app) {
  auto args = std::make_shared<PortArgs>();
  auto* command = app.add_subcommand("port", "Tailor one model (a zoo model or any TorchScript classifier) into a suite of variants, one per device goal (Mistify)");
  command->add_option("config", args->config, "Port config (JSON): base model, goals, algorithm, fine-tuning")->required();
  command->add_option("--out", args->out, "Output folder: one model + card per goal, summary.md, port.json; a rerun resumes")->required();
  command->add_option("--fleet", args->fleet, "Fleet folder that device goals name, 'builtin' or 'phones'")->capture_default_str();
  command->add_option("--mode", args->mode, "Override the config: collective (along the goal tree) or independent")
      ->check(CLI::IsMember(port_mode_names()));
  command->add_option("--algorithm", args->algorithm, "Override the config: morphnet, evolution or l1")
      ->check(CLI::IsMember(port_algorithm_names()));
  command->add_flag("--serve", args->serve, "After the batch port, take new goals over HTTP (POST /v1/goals) until stopped");
  command->add_option("--host", args->host, "--serve: address to listen on")->capture_default_str();
  command->add_option("--port", args->port, "--serve: port (0 = any free one, printed)")->capture_default_str();
  return [args] { return run(*args); };
}

}  // namespace edgefleet::cli
