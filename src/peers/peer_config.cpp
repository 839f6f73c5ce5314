// The peer-tuning config: JSON in and out, the built-in experiment, partitions, scenarios.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <set>
#include <sstream>

#include "core/json_fields.h"
#include "edgefleet/peer_tuning.h"
#include "edgefleet/zoo.h"

namespace edgefleet {
namespace {

using nlohmann::json;
using json_fields::check_keys;
using json_fields::fail;
using json_fields::read_bool;
using json_fields::at_least;
using json_fields::positive;
using json_fields::read_number;

void read_steps(const json& j, const char* key, FinetuneSettings& s, const std::string& origin) {
  if (!j.contains(key)) return;
  const std::string where = std::string(key) + ".";
  const json& o = j[key];
  if (!o.is_object()) fail(origin, std::string(key) + " must be an object");
  check_keys(o, {"steps", "batch", "learning_rate", "distill_weight", "temperature", "augment"}, origin, where);
  read_number(o, "steps", s.steps, origin, where, at_least(1, 1e7));
  read_number(o, "batch", s.batch, origin, where, at_least(1, 65536));
  read_number(o, "learning_rate", s.learning_rate, origin, where, positive(100));
  read_number(o, "distill_weight", s.distill_weight, origin, where, at_least(0, 1));
  read_number(o, "temperature", s.temperature, origin, where, positive(1000));
  read_bool(o, "augment", s.augment, origin, where);
}

json steps_json(const FinetuneSettings& s) {
  return {{"steps", s.steps}, {"batch", s.batch}, {"learning_rate", s.learning_rate}, {"distill_weight", s.distill_weight},
          {"temperature", s.temperature}, {"augment", s.augment}};
}

bool is_file_name(const std::string& name) {
  return !name.empty() && name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == std::string::npos;
}

std::string number_text(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

}  // namespace

std::vector<std::string> peer_scenarios(const PeerConfig& config) {
  std::vector<std::string> names{"local", "kd-teacher"};
  for (int k : config.peer_counts) names.push_back("peers-" + std::to_string(k));
  if (!config.peer_counts.empty()) {
    const int most = *std::max_element(config.peer_counts.begin(), config.peer_counts.end());
    for (double e : config.epsilons) names.push_back("peers-" + std::to_string(most) + "-eps-" + number_text(e));
  }
  return names;
}

int scenario_peers(const std::string& scenario) {
  if (scenario.rfind("peers-", 0) != 0) return 0;
  return std::stoi(scenario.substr(6));
}

double scenario_epsilon(const std::string& scenario) {
  const auto at = scenario.find("-eps-");
  return at == std::string::npos ? 0.0 : std::stod(scenario.substr(at + 5));
}

int peers_skipped(int chosen) {
  if (chosen <= 1) return 0;
  return std::min(chosen - 1, std::max(chosen / 10, 1));
}

std::vector<std::size_t> device_partition(const PeerConfig& config, std::size_t device_index, std::size_t train_set_size) {
  std::vector<std::size_t> order(train_set_size);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::mt19937_64 rng(config.seed);
  std::shuffle(order.begin(), order.end(), rng);
  const std::size_t begin = device_index * config.images_per_device;
  const std::size_t end = std::min(train_set_size, begin + config.images_per_device);
  if (begin >= end) return {};
  return {order.begin() + static_cast<std::ptrdiff_t>(begin), order.begin() + static_cast<std::ptrdiff_t>(end)};
}

PeerConfig default_peer_config() {
  PeerConfig c;
  // Five devices, five model sizes; hints: position (km east, km north), hour of day / 3,
  // camera angle / 30 degrees. Two clusters of nearby devices and one in between.
  c.devices = {{"cam-north-1", "cnn_tiny", {0.0, 10.0, 3.0, 1.0}},
               {"cam-north-2", "cnn_plain", {0.5, 10.5, 3.0, 1.5}},
               {"phone-south-1", "mobilenetv2_w035", {0.0, 0.0, 6.0, 0.0}},
               {"phone-south-2", "mobilenetv2_w050", {0.8, 0.3, 6.5, 0.5}},
               {"kiosk-centre", "resnet_s", {0.3, 5.0, 4.5, 1.0}}};
  return c;
}

Expected<PeerConfig> peer_config_from_json(const json& j, const std::string& origin) {
  return capture([&] {
    if (!j.is_object()) fail(origin, "the peer config must be a JSON object");
    check_keys(j, {"images_per_device", "validation_fraction", "eval_images", "teacher", "local", "rounds", "max_rounds", "patience", "min_gain",
                   "privacy_steps", "peer_counts", "epsilons", "lsh", "threads", "wait_seconds", "seed", "devices"},
               origin, "");
    PeerConfig c = default_peer_config();
    read_number(j, "images_per_device", c.images_per_device, origin, "", at_least(1, 1e7));
    read_number(j, "validation_fraction", c.validation_fraction, origin, "", positive(0.9));
    read_number(j, "eval_images", c.eval_images, origin, "", at_least(1, 1e7));
    if (j.contains("teacher")) {
      if (!j["teacher"].is_string() || j["teacher"].get<std::string>().empty()) fail(origin, "teacher must be a zoo model name or a card path");
      c.teacher = j["teacher"].get<std::string>();
    }
    read_steps(j, "local", c.local, origin);
    read_steps(j, "rounds", c.rounds, origin);
    read_number(j, "max_rounds", c.max_rounds, origin, "", at_least(1, 10000));
    read_number(j, "patience", c.patience, origin, "", at_least(1, 10000));
    read_number(j, "min_gain", c.min_gain, origin, "", at_least(0, 1));
    read_number(j, "privacy_steps", c.privacy_steps, origin, "", at_least(1, 1e7));
    read_number(j, "threads", c.threads, origin, "", at_least(1, 1024));
    read_number(j, "wait_seconds", c.wait_seconds, origin, "", positive(86400));
    read_number(j, "seed", c.seed, origin, "", at_least(0, json_fields::kMaxSeed));
    if (j.contains("lsh")) {
      const json& l = j["lsh"];
      if (!l.is_object()) fail(origin, "lsh must be an object");
      check_keys(l, {"tables", "hashes_per_table", "bucket_width"}, origin, "lsh.");
      read_number(l, "tables", c.lsh.tables, origin, "lsh.", at_least(1, 1000));
      read_number(l, "hashes_per_table", c.lsh.hashes_per_table, origin, "lsh.", at_least(1, 1000));
      read_number(l, "bucket_width", c.lsh.bucket_width, origin, "lsh.", positive(1e9));
    }
    if (j.contains("devices")) {
      if (!j["devices"].is_array()) fail(origin, "devices must be an array");
      c.devices.clear();
      std::set<std::string> names, zoo_names;
      for (const auto& e : builtin_zoo()) zoo_names.insert(e.name);
      for (std::size_t i = 0; i < j["devices"].size(); ++i) {
        const json& d = j["devices"][i];
        const std::string where = "devices[" + std::to_string(i) + "].";
        if (!d.is_object()) fail(origin, where + " must be an object");
        check_keys(d, {"name", "model", "hint"}, origin, where);
        PeerDevice device;
        if (!d.contains("name") || !d["name"].is_string() || !is_file_name(d["name"].get<std::string>())) {
          fail(origin, where + "name must be a non-empty string of letters, digits, '_', '.', '-'");
        }
        device.name = d["name"].get<std::string>();
        if (!names.insert(device.name).second) fail(origin, where + "name '" + device.name + "' is used twice");
        if (!d.contains("model") || !d["model"].is_string() || !zoo_names.count(d["model"].get<std::string>())) {
          fail(origin, where + "model must name a zoo architecture (edgefleet zoo list)");
        }
        device.model = d["model"].get<std::string>();
        if (!d.contains("hint") || !d["hint"].is_array() || d["hint"].empty()) fail(origin, where + "hint must be a non-empty array of numbers");
        for (const auto& x : d["hint"]) {
          if (!x.is_number()) fail(origin, where + "hint must be a non-empty array of numbers");
          device.hint.push_back(x.get<double>());
        }
        c.devices.push_back(std::move(device));
      }
    }
    if (c.devices.size() < 2) fail(origin, "peer tuning needs at least two devices");
    for (const auto& d : c.devices) {
      if (d.hint.size() != c.devices.front().hint.size()) fail(origin, "every device's hint must have the same length");
    }
    if (j.contains("peer_counts")) {
      if (!j["peer_counts"].is_array()) fail(origin, "peer_counts must be an array of positive integers");
      c.peer_counts.clear();
      for (const auto& k : j["peer_counts"]) {
        if (!k.is_number_integer() || k.get<int>() < 1) fail(origin, "peer_counts must be an array of positive integers");
        c.peer_counts.push_back(k.get<int>());
      }
    }
    for (int k : c.peer_counts) {
      if (static_cast<std::size_t>(k) >= c.devices.size()) {
        fail(origin, "peer_counts: " + std::to_string(k) + " peers need more than " + std::to_string(c.devices.size()) + " devices");
      }
    }
    if (j.contains("epsilons")) {
      if (!j["epsilons"].is_array()) fail(origin, "epsilons must be an array of positive numbers");
      c.epsilons.clear();
      for (const auto& e : j["epsilons"]) {
        if (!e.is_number() || !(e.get<double>() > 0)) fail(origin, "epsilons must be an array of positive numbers");
        c.epsilons.push_back(e.get<double>());
      }
    }
    if (c.images_per_device * c.devices.size() > 60000) fail(origin, "images_per_device x devices exceeds the 60000 training images");
    return c;
  });
}

Expected<PeerConfig> read_peer_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) return not_found(path + ": cannot open the peer config");
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalid_argument(path + ": not valid JSON");
  return peer_config_from_json(j, path);
}

json peer_config_to_json(const PeerConfig& c) {
  json devices = json::array();
  for (const auto& d : c.devices) devices.push_back({{"name", d.name}, {"model", d.model}, {"hint", d.hint}});
  return {{"images_per_device", c.images_per_device},
          {"validation_fraction", c.validation_fraction},
          {"eval_images", c.eval_images},
          {"teacher", c.teacher},
          {"local", steps_json(c.local)},
          {"rounds", steps_json(c.rounds)},
          {"max_rounds", c.max_rounds},
          {"patience", c.patience},
          {"min_gain", c.min_gain},
          {"privacy_steps", c.privacy_steps},
          {"peer_counts", c.peer_counts},
          {"epsilons", c.epsilons},
          {"lsh", {{"tables", c.lsh.tables}, {"hashes_per_table", c.lsh.hashes_per_table}, {"bucket_width", c.lsh.bucket_width}}},
          {"threads", c.threads},
          {"wait_seconds", c.wait_seconds},
          {"seed", c.seed},
          {"devices", devices}};
}

}  // namespace edgefleet
