// edgefleet peers: privacy-aware peer tuning at the edge (Mistify §5), the Table-3 experiment.
#include <unistd.h>

#include <iostream>
#include <mutex>

#include "cli/cli_common.h"
#include "core/secret.h"
#include "edgefleet/peer_coordinator.h"
#include "edgefleet/peer_tuning.h"

namespace edgefleet::cli {
namespace {

struct PeersArgs {
  std::string config;
  std::string out;
  std::string device;
  std::string coordinator;
  std::string work;
  std::string host = "127.0.0.1";
  int port = 0;
  int hint_dimensions = 4;
  int expected_devices = 0;
};

Expected<PeerConfig> load_config(const std::string& path) {
  if (path.empty()) return default_peer_config();
  return read_peer_config(path);
}

// This executable's own path, to start device processes with.
std::string own_executable() {
  std::vector<char> buffer(4096);
  const ssize_t n = readlink("/proc/self/exe", buffer.data(), buffer.size() - 1);
  return n > 0 ? std::string(buffer.data(), static_cast<std::size_t>(n)) : std::string("edgefleet");
}

int run_experiment(const PeersArgs& args) {
  auto config = load_config(args.config);
  if (!config) return fail(config.status());
  std::mutex print;
  auto table = run_peer_experiment(*config, args.out, own_executable(), [&](const std::string& line) {
    std::lock_guard<std::mutex> lock(print);
    std::cout << line << std::endl;
  });
  if (!table) return fail(table.status());
  std::cout << "\n" << peer_table_markdown(*config, *table) << "\n" << args.out << "/table.md\n";
  return 0;
}

int run_device(const PeersArgs& args) {
  auto config = load_config(args.config);
  if (!config) return fail(config.status());
  PeerDeviceOptions options;
  options.coordinator_url = args.coordinator;
  options.token = token_from_environment();
  options.device = args.device;
  options.work_dir = args.work;
  options.log = [](const std::string& line) { std::cout << line << std::endl; };
  const Status done = run_peer_device(*config, options);
  if (!done.is_ok()) return fail(done);
  return 0;
}

int run_coordinator(const PeersArgs& args) {
  PeerCoordinatorOptions options;
  options.host = args.host;
  options.port = args.port;
  options.token = token_from_environment();
  const bool generated = options.token.empty();
  if (generated) options.token = random_secret();
  options.hint_dimensions = args.hint_dimensions;
  options.expected_devices = args.expected_devices;
  block_stop_signals();
  auto coordinator = PeerCoordinator::start(options);
  if (!coordinator) return fail(coordinator.status());
  std::cout << "listening on " << (*coordinator)->url() << std::endl;
  if (generated) std::cout << "token (give the devices EDGEFLEET_TOKEN=" << options.token << ")" << std::endl;
  wait_for_stop_signal();
  return 0;
}

}  // namespace

Runner add_peers_command(CLI::App& app) {
  auto args = std::make_shared<PeersArgs>();
  auto* peers = app.add_subcommand("peers", "Peer knowledge-distillation tuning at the edge, with privacy (Mistify §5)");
  peers->require_subcommand(1);
  auto* run = peers->add_subcommand("run", "The Table-3 experiment: a coordinator and one process per device; writes table.md");
  run->add_option("config", args->config, "Peer config (JSON); default: five devices, five zoo sizes, Fashion-MNIST");
  run->add_option("--out", args->out, "Output folder: table.md, results.json, devices/*; a rerun resumes")->required();
  auto* device = peers->add_subcommand("device", "One device process (started by 'peers run'): local training, then every scenario");
  device->add_option("config", args->config, "Peer config (JSON); default: the built-in one");
  device->add_option("--device", args->device, "This device's name in the config")->required();
  device->add_option("--coordinator", args->coordinator, "Coordinator URL, http://HOST:PORT (its token: $EDGEFLEET_TOKEN)")->required();
  device->add_option("--work", args->work, "This device's folder (checkpoints; a rerun resumes)")->required();
  auto* coordinator = peers->add_subcommand(
      "coordinator", "A standalone coordinator, for devices on other machines; its token is $EDGEFLEET_TOKEN, or a new one it prints");
  coordinator->add_option("--host", args->host, "Address to bind (0.0.0.0 for devices elsewhere)")->capture_default_str();
  coordinator->add_option("--port", args->port, "Port (0 = any free one)")->capture_default_str()->check(CLI::Range(0, 65535));
  coordinator->add_option("--hint-dimensions", args->hint_dimensions, "Length of the devices' hint vectors")->capture_default_str()->check(CLI::PositiveNumber);
  coordinator->add_option("--devices", args->expected_devices,
                          "How many devices take part (0 = not known: finished scenarios keep each device's round-0 and latest models for late joiners)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  return [args, run, device, coordinator]() {
    if (run->parsed()) return run_experiment(*args);
    if (device->parsed()) return run_device(*args);
    if (coordinator->parsed()) return run_coordinator(*args);
    return 2;
  };
}

}  // namespace edgefleet::cli
