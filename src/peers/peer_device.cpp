// One edge device of peer tuning: private data in, models out. Everything this process
// sends is a hint vector, TorchScript models and result numbers (the coordinator refuses any
// other upload); its images never leave it.
#include <httplib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "core/atomic_file.h"
#include "core/elapsed.h"
#include "core/thread_count.h"
#include "edgefleet/dataset.h"
#include "edgefleet/model_card.h"
#include "edgefleet/peer_tuning.h"
#include "edgefleet/zoo.h"
#include "peers/laplace_noise.h"
#include "zoo/training.h"
#include "zoo/module_builder.h"

namespace edgefleet {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string serialise(torch::jit::Module& module) {
  std::ostringstream out;
  module.save(out);
  return out.str();
}

torch::jit::Module deserialise(const std::string& bytes) {
  std::istringstream in(bytes);
  return torch::jit::load(in);
}

// The device's side of the coordinator's HTTP API; every failure throws Error.
class CoordinatorLink {
 public:
  CoordinatorLink(const std::string& url, const std::string& token, double wait_seconds) : wait_seconds_(wait_seconds) {
    if (url.rfind("http://", 0) != 0) throw Error(invalid_argument("coordinator URL must start with http://: " + url));
    http_ = std::make_unique<httplib::Client>(url.substr(7));
    http_->set_read_timeout(120, 0);
    http_->set_write_timeout(120, 0);
    http_->set_tcp_nodelay(true);
    if (!token.empty()) http_->set_bearer_token_auth(token.c_str());
  }

  // Registers the hint and keeps the device's write key. `key_file` holds the key of an
  // earlier registration with the same coordinator (a restarted device) and receives the new.
  void register_hint(const std::string& device, const std::vector<double>& hint, const fs::path& key_file) {
    httplib::Headers headers;
    if (std::ifstream in(key_file); in && std::getline(in, key_)) headers.emplace("X-Device-Key", key_);
    auto res = http_->Post(("/v1/devices/" + device).c_str(), headers, json{{"hint", hint}}.dump(), "application/json");
    check(res, "registering " + device);
    key_ = json::parse(res->body).at("key").get<std::string>();
    write_file_atomically(key_ + "\n", key_file.string());
  }

  void send_model(const std::string& scenario, const std::string& device, int round, const std::string& bytes, bool final) {
    const std::string path = "/v1/models/" + scenario + "/" + device + "/" + std::to_string(round) + (final ? "?final=1" : "");
    check(http_->Put(path.c_str(), key_headers(), bytes, "application/octet-stream"), "sending the model of " + device);
  }

  // Blocks until the coordinator names k peers whose models for `round` are there.
  std::vector<std::string> peers(const std::string& scenario, const std::string& device, int round, int k) {
    const std::string path = "/v1/peers/" + scenario + "/" + device + "/" + std::to_string(round) + "?k=" + std::to_string(k);
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
      auto res = http_->Get(path.c_str());
      check(res, "asking for peers");
      if (res->status == 200) return json::parse(res->body).at("peers").get<std::vector<std::string>>();
      if (seconds_since(start) > wait_seconds_) {
        throw Error(internal_error("no peer models for " + scenario + " round " + std::to_string(round) + " after " +
                                   std::to_string(static_cast<int>(wait_seconds_)) + " s; still waiting for " + res->body));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  std::string model(const std::string& scenario, const std::string& device, int round) {
    auto res = http_->Get(("/v1/models/" + scenario + "/" + device + "/" + std::to_string(round)).c_str());
    check(res, "fetching the model of " + device);
    return res->body;
  }

  void send_result(const std::string& scenario, const std::string& device, const json& result) {
    check(http_->Post(("/v1/results/" + scenario + "/" + device).c_str(), key_headers(), result.dump(), "application/json"),
          "sending the result");
  }

 private:
  static void check(const httplib::Result& res, const std::string& what) {
    if (!res) throw Error(io_error(what + ": the coordinator did not answer (" + httplib::to_string(res.error()) + ")"));
    if (res->status != 200 && res->status != 202) throw Error(io_error(what + ": coordinator answered " + std::to_string(res->status) + " " + res->body));
  }

  httplib::Headers key_headers() const { return {{"X-Device-Key", key_}}; }

  std::unique_ptr<httplib::Client> http_;
  std::string key_;
  double wait_seconds_;
};

struct DeviceData {
  TrainingData train;
  TrainingData validation;
  TrainingData eval;
};

DeviceData load_device_data(const PeerConfig& config, std::size_t index) {
  auto train_set = open_fashion_mnist(FashionMnistSplit::kTrain);
  if (!train_set) throw Error(train_set.status());
  auto test_set = open_fashion_mnist(FashionMnistSplit::kTest);
  if (!test_set) throw Error(test_set.status());
  auto items = device_partition(config, index, (*train_set)->size());
  const auto validation = static_cast<std::size_t>(static_cast<double>(items.size()) * config.validation_fraction);
  if (items.size() < 2 || validation < 1) throw Error(invalid_argument("the private partition is too small to split off validation images"));
  std::vector<std::size_t> validation_items(items.end() - static_cast<std::ptrdiff_t>(validation), items.end());
  items.resize(items.size() - validation);
  std::vector<std::size_t> eval_items(std::min(config.eval_images, (*test_set)->size()));
  for (std::size_t i = 0; i < eval_items.size(); ++i) eval_items[i] = i;
  return {raw_images(**train_set, items, 1, 28), raw_images(**train_set, validation_items, 1, 28), raw_images(**test_set, eval_items, 1, 28)};
}

ArchSpec zoo_arch(const std::string& name) {
  for (const auto& e : builtin_zoo()) {
    if (e.name == name) return e.arch;
  }
  throw Error(not_found("no zoo architecture '" + name + "'"));
}

}  // namespace

Status run_peer_device(const PeerConfig& config, const PeerDeviceOptions& options) {
  auto done = capture([&] {
    const auto log = [&](const std::string& line) {
      if (options.log) options.log(options.device + ": " + line);
    };
    std::size_t index = config.devices.size();
    for (std::size_t i = 0; i < config.devices.size(); ++i) {
      if (config.devices[i].name == options.device) index = i;
    }
    if (index == config.devices.size()) throw Error(not_found("device '" + options.device + "' is not in the config"));
    const PeerDevice& me = config.devices[index];
    torch::set_num_threads(resolve_thread_count(config.threads));
    torch::manual_seed(config.seed + index);
    fs::create_directories(options.work_dir);
    const fs::path work(options.work_dir);

    const DeviceData data = load_device_data(config, index);
    CoordinatorLink link(options.coordinator_url, options.token, config.wait_seconds);
    link.register_hint(me.name, me.hint, work / "coordinator.key");

    // (i) local training until convergence (the recipe's steps), kept for a resumed run.
    const fs::path local_file = work / "local.pt";
    torch::jit::Module local;
    if (fs::exists(local_file)) {
      local = torch::jit::load(local_file.string());
      log("local model resumed");
    } else {
      const auto started = std::chrono::steady_clock::now();
      local = build_module(zoo_arch(me.model), config.seed * 1000 + index);
      train_steps(local, data.train, config.local, config.seed + 17 * index);
      write_file_atomically(serialise(local), local_file.string());
      log("local training: " + std::to_string(config.local.steps) + " steps in " + std::to_string(seconds_since(started)) + " s");
    }
    const double local_accuracy = top1_accuracy(local, data.eval);

    torch::jit::Module teacher;
    bool teacher_loaded = false;

    for (const std::string& scenario : peer_scenarios(config)) {
      const fs::path dir = work / scenario;
      const fs::path result_file = dir / "result.json";
      const int k = scenario_peers(scenario);
      const double epsilon = scenario_epsilon(scenario);
      if (fs::exists(result_file)) {
        // Finished before an interruption: its peers may still need its final model.
        std::ifstream in(result_file);
        const json result = json::parse(in);
        if (k > 0) {
          std::ifstream model_in(dir / "sent.pt", std::ios::binary);
          const std::string bytes((std::istreambuf_iterator<char>(model_in)), std::istreambuf_iterator<char>());
          link.send_model(scenario, me.name, 0, bytes, /*final=*/true);
        }
        link.send_result(scenario, me.name, result);
        log(scenario + ": resumed");
        continue;
      }
      fs::create_directories(dir);
      const auto started = std::chrono::steady_clock::now();
      if (scenario == "kd-teacher" && !teacher_loaded) {
        auto card = resolve_model(config.teacher);
        if (!card) throw Error(card.status());
        teacher = torch::jit::load(card->model_path());
        teacher.eval();
        teacher_loaded = true;
      }
      // The noised copy of the private data that the models sent are tuned on (ε-DP per pixel).
      TrainingData noised;
      if (epsilon > 0) noised = {laplace_noised(data.train.images, epsilon, config.seed * 7919 + index), data.train.labels};

      torch::jit::Module state = trainable_copy(local);
      double best_validation = top1_accuracy(state, data.validation);
      int stale = 0, rounds = 0;
      std::vector<std::string> first_peers;
      std::string last_sent;
      std::mt19937_64 rng(config.seed * 31 + index);
      for (int round = 0; round < config.max_rounds; ++round) {
        TeacherProbabilities teacher_fn;
        std::vector<torch::jit::Module> peer_models;
        if (k > 0) {
          // (ii) send the current model (tuned on noised data first, with ε), get the peers'.
          torch::jit::Module sent = trainable_copy(state);
          if (epsilon > 0) {
            FinetuneSettings s = config.rounds;
            s.steps = config.privacy_steps;
            train_steps(sent, noised, s, config.seed + 1000 * round + index);
          }
          last_sent = serialise(sent);
          link.send_model(scenario, me.name, round, last_sent, false);
          auto chosen = link.peers(scenario, me.name, round, k);
          if (round == 0) first_peers = chosen;
          std::shuffle(chosen.begin(), chosen.end(), rng);
          chosen.resize(chosen.size() - static_cast<std::size_t>(peers_skipped(static_cast<int>(chosen.size()))));
          for (const auto& p : chosen) {
            peer_models.push_back(deserialise(link.model(scenario, p, round)));
            peer_models.back().eval();
          }
          const double t = config.rounds.temperature;
          // Models tuned on noised data are asked about noised images, as they were trained.
          auto query_seed = std::make_shared<std::uint64_t>(config.seed * 104729 + 1000 * round + index);
          teacher_fn = [&peer_models, t, epsilon, query_seed](const torch::Tensor& x) {
            const torch::Tensor query = epsilon > 0 ? laplace_noised(x, epsilon, (*query_seed)++) : x;
            torch::Tensor sum;
            for (auto& m : peer_models) {
              const auto p = torch::softmax(m.forward({query}).toTensor() / t, 1);
              sum = sum.defined() ? sum + p : p;
            }
            return sum / static_cast<double>(peer_models.size());
          };
        } else if (scenario == "kd-teacher") {
          teacher_fn = teacher_of(teacher, config.rounds.temperature);
        }
        // (iii) tuning on the private data: cross-entropy, plus distillation when there is a teacher.
        train_steps(state, data.train, config.rounds, config.seed + 1000 * round + 100 * index + 1, teacher_fn);
        ++rounds;
        const double validation = top1_accuracy(state, data.validation);
        log(scenario + " round " + std::to_string(round + 1) + ": validation " + std::to_string(validation));
        // Converged when validation stops improving; the model is the last state (a small
        // validation split picks a "best" round by noise).
        if (validation > best_validation + config.min_gain) {
          best_validation = validation;
          stale = 0;
        } else if (++stale >= config.patience) {
          break;
        }
      }
      if (k > 0) {
        // Peers still tuning get this device's last sent model for every later round.
        link.send_model(scenario, me.name, rounds, last_sent, /*final=*/true);
        write_file_atomically(last_sent, (dir / "sent.pt").string());
      }
      const json result{{"model", me.model},
                        {"accuracy", top1_accuracy(state, data.eval)},
                        {"local_accuracy", local_accuracy},
                        {"validation", top1_accuracy(state, data.validation)},
                        {"rounds", rounds},
                        {"peers", first_peers},
                        {"seconds", seconds_since(started)}};
      write_file_atomically(result.dump(2), result_file.string());
      link.send_result(scenario, me.name, result);
      log(scenario + ": top-1 " + std::to_string(result["accuracy"].get<double>()) + " after " + std::to_string(rounds) + " rounds");
    }
    return true;
  });
  return done.has_value() ? Status::ok() : done.status();
}

}  // namespace edgefleet
