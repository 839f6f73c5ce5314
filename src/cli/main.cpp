// edgefleet: one binary, one subcommand per capability. Errors exit 1 with one line on stderr.
#include <iostream>
#include <map>

#include "cli/cli_common.h"
#include "core/allocator.h"
#include "core/data_dir.h"

int main(int argc, char** argv) {
  edgefleet::keep_freed_memory_for_reuse();  // before any thread or model exists
  CLI::App app{"edgefleet: ship one image classifier to a fleet of heterogeneous edge devices"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "edgefleet 0.1.0 (built-in models, fleet and zoos in " + edgefleet::data_dir() + ")");
  std::map<CLI::App*, edgefleet::cli::Runner> runners;
  auto add = [&](edgefleet::cli::Runner runner) { runners[app.get_subcommands({}).back()] = std::move(runner); };
  add(edgefleet::cli::add_zoo_command(app));
  add(edgefleet::cli::add_eval_command(app));
  add(edgefleet::cli::add_fleet_command(app));
  add(edgefleet::cli::add_simulate_command(app));
  add(edgefleet::cli::add_profile_command(app));
  add(edgefleet::cli::add_pipeline_command(app));
  add(edgefleet::cli::add_stability_command(app));
  add(edgefleet::cli::add_harden_command(app));
  add(edgefleet::cli::add_port_command(app));
  add(edgefleet::cli::add_prune_command(app));
  add(edgefleet::cli::add_export_command(app));
  add(edgefleet::cli::add_device_command(app));
  add(edgefleet::cli::add_peers_command(app));
  add(edgefleet::cli::add_branches_command(app));
  add(edgefleet::cli::add_serve_command(app));
  add(edgefleet::cli::add_repository_command(app));
  add(edgefleet::cli::add_infer_command(app));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every usage error exits 2, whatever CLI11's own code.
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  for (auto& [command, runner] : runners) {
    if (command->parsed()) {
      try {
        return runner();
      } catch (const edgefleet::Error& e) {
        return edgefleet::cli::fail(e.status());
      } catch (const std::exception& e) {
        return edgefleet::cli::fail(edgefleet::internal_error(e.what()));
      }
    }
  }
  std::cerr << app.help();
  return 2;
}
