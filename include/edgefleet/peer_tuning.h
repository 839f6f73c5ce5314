// Privacy-aware fine-tuning at the edge (papers/mistify.md §5): simulated edge devices, each
// with a private partition of the training data and its own model, train locally and then
// fine-tune with knowledge distilled from the average output of their peers' models. Devices
// run as separate processes and exchange models — never data — through a coordinator over
// HTTP (peer_coordinator.h), which picks each device's peers by an LSH index over hints.
//
// The experiment runs one scenario after another (a row of the paper's Table 3 each):
//   local          local training only, continued for as many rounds as the others
//   kd-teacher     distillation from a strong teacher (a model trained on all the data)
//   peers-K        distillation from the K nearest peers' models
//   peers-K-eps-E  the same, the models sent having been tuned on Laplace-noised data
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "edgefleet/lsh_index.h"
#include "edgefleet/port.h"
#include "edgefleet/status.h"

namespace edgefleet {

struct PeerDevice {
  std::string name;
  std::string model;          // a zoo architecture (trained from scratch on the device)
  std::vector<double> hint;   // e.g. location, hour, view angle: what the LSH index sees
};

struct PeerConfig {
  std::size_t images_per_device = 800;   // private partition of the Fashion-MNIST training set
  double validation_fraction = 0.2;      // of each partition: decides convergence
  std::size_t eval_images = 2000;        // of the test set, the same for every device
  std::string teacher = "resnet_s";      // zoo model (models/fashion-mnist) or card path
  FinetuneSettings local{600, 64, 0.05, false, 0.0, 1.0, true};    // local training
  FinetuneSettings rounds{100, 64, 0.01, true, 0.5, 3.0, true};   // per round of tuning
  int max_rounds = 5;
  int patience = 2;           // rounds without validation gain before a device stops
  double min_gain = 0.002;    // what counts as a gain
  int privacy_steps = 100;    // tuning on noised data before each model is sent
  std::vector<int> peer_counts{1, 2, 4};
  std::vector<double> epsilons{5.0, 1.0};  // run with the largest peer count
  LshOptions lsh;
  int threads = 1;            // torch threads per device process
  double wait_seconds = 1800; // for peers' models before a device gives up
  std::uint64_t seed = 1;
  std::vector<PeerDevice> devices;
};

// The scenario names in the order they run.
std::vector<std::string> peer_scenarios(const PeerConfig& config);
// Peers a scenario distils from (0 for local and kd-teacher), and its ε (0 = no noise).
int scenario_peers(const std::string& scenario);
double scenario_epsilon(const std::string& scenario);

Expected<PeerConfig> peer_config_from_json(const nlohmann::json& j, const std::string& origin);
Expected<PeerConfig> read_peer_config(const std::string& path);
nlohmann::json peer_config_to_json(const PeerConfig& config);
// The built-in experiment: five devices of five zoo sizes on Fashion-MNIST.
PeerConfig default_peer_config();

// Item indices of `device`'s private partition of the training set (disjoint per device,
// drawn by the seed): training items first, validation items last.
std::vector<std::size_t> device_partition(const PeerConfig& config, std::size_t device_index, std::size_t train_set_size);

// How many of n chosen peers a round leaves out at random: max(n/10, 1) (paper §5.1), but
// never all of them.
int peers_skipped(int chosen);

struct PeerScenarioResult {
  std::string scenario;
  std::string device;
  std::string model;
  double accuracy = 0.0;       // top-1 on the evaluation images
  double local_accuracy = 0.0; // the same device's locally trained model
  int rounds = 0;
  std::vector<std::string> peers;  // the peers the coordinator chose (first round)
  double seconds = 0.0;
};

struct PeerDeviceOptions {
  std::string coordinator_url;  // http://127.0.0.1:PORT
  std::string token;            // the coordinator's bearer token ("" when it has none)
  std::string device;
  std::string work_dir;         // checkpoints: local model, finished scenarios
  std::function<void(const std::string&)> log;
};

// One device process: local training, then every scenario in turn. Resumable per scenario.
Status run_peer_device(const PeerConfig& config, const PeerDeviceOptions& options);

struct PeerTable {
  std::vector<std::string> scenarios;
  std::vector<PeerScenarioResult> results;  // scenario-major
  std::uint64_t bytes_uploaded = 0;        // models sent to the coordinator
  std::uint64_t bytes_downloaded = 0;      // models fetched from it
  double seconds = 0.0;
};

// The whole experiment in `out_dir`: a coordinator in this process, one process per device
// (`cli_path peers device ...`), table.md and results.json at the end. Resumable.
Expected<PeerTable> run_peer_experiment(const PeerConfig& config, const std::string& out_dir, const std::string& cli_path,
                                        const std::function<void(const std::string&)>& log = {});

std::string peer_table_markdown(const PeerConfig& config, const PeerTable& table);

}  // namespace edgefleet
