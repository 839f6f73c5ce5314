// The peer-tuning experiment: a coordinator here, one process per device, the Table-3 table.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/atomic_file.h"
#include "core/secret.h"
#include "core/subprocess.h"
#include "edgefleet/peer_coordinator.h"
#include "edgefleet/peer_tuning.h"

extern char** environ;

namespace edgefleet {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Starts `cli_path args...` with stdout and stderr appended to `log`.
// Starts `cli_path args` with this process's environment plus `extra` ("NAME=value": the
// token travels there, not in argv, where ps shows it).
Expected<pid_t> spawn(const std::string& cli_path, const std::vector<std::string>& args, const std::vector<std::string>& extra,
                      const fs::path& log) {
  std::vector<char*> env;
  for (char** e = environ; *e; ++e) {
    const std::string entry = *e;
    const bool replaced = std::any_of(extra.begin(), extra.end(), [&](const std::string& x) {
      return entry.compare(0, x.find('=') + 1, x, 0, x.find('=') + 1) == 0;
    });
    if (!replaced) env.push_back(*e);
  }
  for (const auto& e : extra) env.push_back(const_cast<char*>(e.c_str()));
  env.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(cli_path.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, cli_path.c_str(), &actions, nullptr, argv.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return io_error("cannot start " + cli_path + ": " + std::strerror(rc));
  return pid;
}

std::string fixed(double value, int decimals) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*f", decimals, value);
  return buffer;
}

std::string markdown_row(const std::vector<std::string>& cells) {
  std::string out = "|";
  for (const auto& cell : cells) out += " " + cell + " |";
  return out + "\n";
}

std::string scenario_label(const PeerConfig& config, const std::string& scenario) {
  if (scenario == "local") return "Local training";
  if (scenario == "kd-teacher") return "KD (strong teacher: " + config.teacher + ")";
  const int k = scenario_peers(scenario);
  std::string label = std::to_string(k) + "-peer tuning";
  if (const double e = scenario_epsilon(scenario); e > 0) {
    std::ostringstream eps;
    eps << e;
    label += ", ε = " + eps.str();
  }
  return label;
}

}  // namespace

Expected<PeerTable> run_peer_experiment(const PeerConfig& config, const std::string& out_dir, const std::string& cli_path,
                                        const std::function<void(const std::string&)>& log) {
  return capture([&]() -> PeerTable {
    const auto started = std::chrono::steady_clock::now();
    const fs::path out(out_dir);
    fs::create_directories(out / "devices");
    const fs::path config_file = out / "peers.json";
    const std::string config_text = peer_config_to_json(config).dump(2);
    if (fs::exists(config_file)) {
      std::ifstream in(config_file);
      const std::string existing((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (existing != config_text) throw Error(invalid_argument(out_dir + " holds a run of another peer config: use a new --out folder"));
    } else {
      write_file_atomically(config_text, config_file.string());
    }

    PeerCoordinatorOptions coordinator_options;
    coordinator_options.hint_dimensions = static_cast<int>(config.devices.front().hint.size());
    coordinator_options.lsh = config.lsh;
    coordinator_options.expected_devices = static_cast<int>(config.devices.size());
    coordinator_options.token = random_secret();
    const std::vector<std::string> device_env = {std::string(kTokenVariable) + "=" + coordinator_options.token};
    auto coordinator = PeerCoordinator::start(coordinator_options);
    if (!coordinator) throw Error(coordinator.status());
    if (log) log("coordinator on " + (*coordinator)->url());

    std::map<pid_t, std::string> running;
    for (const auto& device : config.devices) {
      const fs::path log_file = out / "devices" / (device.name + ".log");
      auto pid = spawn(cli_path, {"peers", "device", config_file.string(), "--device", device.name, "--coordinator", (*coordinator)->url(),
                                  "--work", (out / "devices" / device.name).string()},
                       device_env, log_file);
      if (!pid) {
        for (const auto& [p, name] : running) kill(p, SIGTERM);
        throw Error(pid.status());
      }
      running[*pid] = device.name;
      if (log) log("started " + device.name + " (" + device.model + "), pid " + std::to_string(*pid) + ", log " + log_file.string());
    }
    std::string failure;
    while (!running.empty()) {
      int wstatus = 0;
      const pid_t pid = waitpid(-1, &wstatus, 0);
      if (pid < 0) break;
      const auto it = running.find(pid);
      if (it == running.end()) continue;
      const std::string name = it->second;
      running.erase(it);
      const bool ok = WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0;
      if (log) log(name + (ok ? " finished" : " failed"));
      if (!ok && failure.empty()) {
        failure = "device " + name + " failed: " + last_line_of((out / "devices" / (name + ".log")).string());
        for (const auto& [p, other] : running) kill(p, SIGTERM);
      }
    }
    if (!failure.empty()) throw Error(internal_error(failure + " (finished scenarios are kept; rerun to resume)"));

    PeerTable table;
    table.scenarios = peer_scenarios(config);
    std::map<std::pair<std::string, std::string>, json> posted;
    for (const auto& r : (*coordinator)->results()) posted[{r.at("scenario").get<std::string>(), r.at("device").get<std::string>()}] = r;
    for (const auto& scenario : table.scenarios) {
      for (const auto& device : config.devices) {
        const auto it = posted.find({scenario, device.name});
        if (it == posted.end()) throw Error(internal_error("no result of " + device.name + " for " + scenario));
        const json& r = it->second;
        PeerScenarioResult row;
        row.scenario = scenario;
        row.device = device.name;
        row.model = device.model;
        row.accuracy = r.at("accuracy").get<double>();
        row.local_accuracy = r.at("local_accuracy").get<double>();
        row.rounds = r.at("rounds").get<int>();
        row.peers = r.at("peers").get<std::vector<std::string>>();
        row.seconds = r.at("seconds").get<double>();
        table.results.push_back(row);
      }
    }
    table.bytes_uploaded = (*coordinator)->bytes_uploaded();
    table.bytes_downloaded = (*coordinator)->bytes_downloaded();
    table.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

    json results = json::array();
    for (const auto& r : table.results) {
      results.push_back({{"scenario", r.scenario}, {"device", r.device}, {"model", r.model}, {"accuracy", r.accuracy},
                         {"local_accuracy", r.local_accuracy}, {"rounds", r.rounds}, {"peers", r.peers}, {"seconds", r.seconds}});
    }
    write_file_atomically(json{{"results", results}, {"bytes_uploaded", table.bytes_uploaded}, {"bytes_downloaded", table.bytes_downloaded},
                               {"seconds", table.seconds}}
                              .dump(2),
                          (out / "results.json").string());
    write_file_atomically(peer_table_markdown(config, table), (out / "table.md").string());
    return table;
  });
}

std::string peer_table_markdown(const PeerConfig& config, const PeerTable& table) {
  std::vector<std::string> header{"Scenario"};
  for (const auto& d : config.devices) header.push_back(d.name + " (" + d.model + ")");
  header.push_back("Mean top-1 (%)");
  header.push_back("vs local (points)");
  header.push_back("Rounds (mean)");
  std::map<std::string, double> mean;
  std::string rows = markdown_row(header) + "|---|";
  for (std::size_t i = 1; i < header.size(); ++i) rows += "---:|";
  rows += "\n";
  for (const auto& scenario : table.scenarios) {
    std::vector<std::string> row{scenario_label(config, scenario)};
    double sum = 0, rounds = 0;
    int n = 0;
    for (const auto& r : table.results) {
      if (r.scenario != scenario) continue;
      row.push_back(fixed(100 * r.accuracy, 2));
      sum += r.accuracy;
      rounds += r.rounds;
      ++n;
    }
    mean[scenario] = n ? sum / n : 0;
    row.push_back(fixed(100 * mean[scenario], 2));
    row.push_back(scenario == "local" ? "" : (mean[scenario] >= mean["local"] ? "+" : "") + fixed(100 * (mean[scenario] - mean["local"]), 2));
    row.push_back(fixed(n ? rounds / n : 0, 1));
    rows += markdown_row(row);
  }
  std::ostringstream out;
  out << "Peer tuning on Fashion-MNIST: " << config.devices.size() << " devices, " << config.images_per_device
      << " private training images each (" << static_cast<int>(100 * config.validation_fraction) << "% of them for validation), top-1 on "
      << config.eval_images << " test images.\n\n"
      << rows << "\nModels exchanged: " << table.bytes_uploaded / 1024 << " KiB sent to the coordinator, "
      << table.bytes_downloaded / 1024 << " KiB fetched from it; no image left a device. Wall time " << fixed(table.seconds, 0) << " s.\n";
  return out.str();
}

}  // namespace edgefleet
