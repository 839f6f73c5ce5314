// The peer coordinator: models and hints in memory behind a cpp-httplib server.
#include "edgefleet/peer_coordinator.h"

#include <httplib.h>
#include <torch/script.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "core/http_service.h"
#include "core/secret.h"

namespace edgefleet {
namespace {

using nlohmann::json;
using http::send_error;
using http::send_json;

constexpr const char* kName = "([A-Za-z0-9_.-]+)";
constexpr const char* kDeviceKeyHeader = "X-Device-Key";

std::optional<int> parse_round(const std::string& text) {
  try {
    std::size_t used = 0;
    const int round = std::stoi(text, &used);
    if (used != text.size() || round < 0) return std::nullopt;
    return round;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

http::Limits coordinator_limits() {
  http::Limits limits;
  limits.max_body_bytes = 256u << 20;  // one model
  limits.max_connections = 128;
  limits.write_timeout_seconds = 120;
  return limits;
}

}  // namespace

struct PeerCoordinator::Impl {
  struct DeviceModels {
    std::map<int, std::shared_ptr<const std::string>> rounds;
    bool final = false;
  };

  PeerCoordinatorOptions options;
  http::Service web{"the peer coordinator", coordinator_limits()};

  mutable std::mutex mutex;
  LshIndex index;
  std::map<std::string, std::vector<double>> hints;
  std::map<std::string, std::string> keys;  // device -> its write key
  std::map<std::pair<std::string, std::string>, DeviceModels> models;  // (scenario, device)
  std::map<std::string, std::set<std::string>> reported;  // scenario -> devices that posted results
  std::vector<json> results;
  std::vector<RecordedRequest> traffic;
  std::atomic<std::uint64_t> uploaded{0}, downloaded{0};
  std::size_t held_bytes = 0;

  explicit Impl(const PeerCoordinatorOptions& o) : options(o), index(o.hint_dimensions, o.lsh) {}

  void record(const httplib::Request& req, const std::string& body) {
    if (!options.record_traffic) return;
    std::string path = req.path;
    std::string query;
    for (const auto& [key, value] : req.params) query += (query.empty() ? "?" : "&") + key + "=" + value;
    std::lock_guard<std::mutex> lock(mutex);
    traffic.push_back({req.method, path + query, body});
  }

  // A device may only write its own models and results.
  bool owns(const httplib::Request& req, const std::string& device) const {
    const auto it = keys.find(device);
    return it != keys.end() && same_secret(req.get_header_value(kDeviceKeyHeader), it->second);
  }

  bool has_round(const std::string& scenario, const std::string& device, int round) const {
    const auto it = models.find({scenario, device});
    if (it == models.end() || it->second.rounds.empty()) return false;
    return it->second.final || it->second.rounds.rbegin()->first >= round;
  }

  // Drops the models no device can still ask for. A device at round q (the last round it
  // sent) asks for each peer's latest model up to q; a device that has sent nothing in the
  // scenario will ask at round 0. So of each device's models only its latest and, per other
  // registered device, the latest one up to that device's round are kept. Until every expected
  // device has registered, the latest up to round 0 is kept too, for one yet to register; a
  // scenario every registered device has reported on then keeps only those, and nothing once
  // every expected device has registered. (Counting only the devices that sent a model would
  // drop everything while a slower device has yet to start the scenario.)
  void evict(const std::string& scenario) {
    std::map<std::string, int> progress;
    for (const auto& [key, slot] : models) {
      if (key.first == scenario) progress[key.second] = slot.rounds.empty() ? 0 : slot.rounds.rbegin()->first;
    }
    const auto& done = reported[scenario];
    const bool finished = std::all_of(hints.begin(), hints.end(), [&](const auto& device) { return done.count(device.first) > 0; });
    const bool everyone_joined = options.expected_devices > 0 && hints.size() >= static_cast<std::size_t>(options.expected_devices);
    for (auto& [key, slot] : models) {
      if (key.first != scenario || slot.rounds.empty()) continue;
      std::set<int> keep;
      const auto keep_latest_up_to = [&](int round) {
        auto r = slot.rounds.upper_bound(round);
        if (r != slot.rounds.begin()) keep.insert(std::prev(r)->first);
      };
      if (!finished || !everyone_joined) keep.insert(slot.rounds.rbegin()->first);
      if (!everyone_joined) keep_latest_up_to(0);  // a device yet to register starts at round 0
      if (!finished) {
        for (const auto& [device, hint] : hints) {
          if (device == key.second) continue;
          const auto p = progress.find(device);
          keep_latest_up_to(p == progress.end() ? 0 : p->second);
        }
      }
      for (auto r = slot.rounds.begin(); r != slot.rounds.end();) {
        if (keep.count(r->first)) {
          ++r;
        } else {
          held_bytes -= r->second->size();
          r = slot.rounds.erase(r);
        }
      }
    }
  }

  void routes() {
    web.set_guard([this](const httplib::Request& req, httplib::Response& res) {
      if (options.token.empty() || same_secret(req.get_header_value("Authorization"), "Bearer " + options.token)) return false;
      res.set_header("WWW-Authenticate", "Bearer");
      send_error(res, 401, "missing or wrong bearer token");
      return true;
    });

    web.post(std::string("/v1/devices/") + kName, [this](const httplib::Request& req, const std::string& text, httplib::Response& res) {
      record(req, text);
      const std::string device = req.matches[1];
      const json body = json::parse(text, nullptr, false);
      if (body.is_discarded()) return send_error(res, 400, "the body is not JSON");
      if (!body.is_object() || !body.contains("hint") || !body["hint"].is_array()) return send_error(res, 400, "expected {\"hint\": [numbers]}");
      std::vector<double> hint;
      for (const auto& x : body["hint"]) {
        if (!x.is_number() || !std::isfinite(x.get<double>())) return send_error(res, 400, "hint values must be finite numbers");
        hint.push_back(x.get<double>());
      }
      std::lock_guard<std::mutex> lock(mutex);
      const bool known = keys.count(device) > 0;
      if (known && !owns(req, device)) {
        return send_error(res, 409, "device '" + device + "' is registered; registering it again needs its key (" + kDeviceKeyHeader + ")");
      }
      const Status inserted = index.insert(device, hint);
      if (!inserted.is_ok()) return send_error(res, 400, inserted.message());
      hints[device] = hint;
      if (!known) keys[device] = random_secret();
      send_json(res, 200, {{"registered", device}, {"devices", hints.size()}, {"key", keys[device]}});
    });

    web.put(std::string("/v1/models/") + kName + "/" + kName + "/([0-9]+)",
            [this](const httplib::Request& req, const std::string& body, httplib::Response& res) {
      record(req, body);
      const std::string scenario = req.matches[1], device = req.matches[2];
      const auto round = parse_round(req.matches[3]);
      if (!round) return send_error(res, 400, "bad round");
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (!hints.count(device)) return send_error(res, 404, "device '" + device + "' is not registered");
        if (!owns(req, device)) return send_error(res, 403, "only device '" + device + "' may send its models (" + kDeviceKeyHeader + ")");
      }
      // Only models get in: a body that does not load as TorchScript is refused.
      try {
        std::istringstream in(body);
        torch::jit::load(in);
      } catch (const std::exception&) {
        return send_error(res, 400, "the body is not a TorchScript model");
      }
      uploaded += body.size();
      std::lock_guard<std::mutex> lock(mutex);
      auto& slot = models[{scenario, device}];
      if (auto old = slot.rounds.find(*round); old != slot.rounds.end()) held_bytes -= old->second->size();
      slot.rounds[*round] = std::make_shared<const std::string>(body);
      held_bytes += body.size();
      if (req.get_param_value("final") == "1") slot.final = true;
      evict(scenario);
      send_json(res, 200, {{"stored", device}, {"round", *round}});
    });

    web.get(std::string("/v1/peers/") + kName + "/" + kName + "/([0-9]+)", [this](const httplib::Request& req, httplib::Response& res) {
      record(req, "");
      const std::string scenario = req.matches[1], device = req.matches[2];
      const auto round = parse_round(req.matches[3]);
      const auto k = parse_round(req.get_param_value("k"));
      if (!round) return send_error(res, 400, "bad round");
      if (!k || *k < 1) return send_error(res, 400, "k must be a positive integer");
      std::lock_guard<std::mutex> lock(mutex);
      const auto hint = hints.find(device);
      if (hint == hints.end()) return send_error(res, 404, "device '" + device + "' is not registered");
      if (hints.size() < static_cast<std::size_t>(*k) + 1) {
        return send_json(res, 202, {{"waiting", "registrations"}, {"devices", hints.size()}});
      }
      auto peers = index.nearest(hint->second, static_cast<std::size_t>(*k), device);
      if (!peers) return send_error(res, 400, peers.status().message());
      json waiting = json::array();
      for (const auto& p : *peers) {
        if (!has_round(scenario, p, *round)) waiting.push_back(p);
      }
      if (!waiting.empty()) return send_json(res, 202, {{"waiting", waiting}});
      send_json(res, 200, {{"peers", *peers}, {"compared", index.last_compared()}});
    });

    web.get(std::string("/v1/models/") + kName + "/" + kName + "/([0-9]+)", [this](const httplib::Request& req, httplib::Response& res) {
      record(req, "");
      const std::string scenario = req.matches[1], device = req.matches[2];
      const auto round = parse_round(req.matches[3]);
      if (!round) return send_error(res, 400, "bad round");
      std::shared_ptr<const std::string> model;
      {
        std::lock_guard<std::mutex> lock(mutex);
        const auto it = models.find({scenario, device});
        if (it != models.end()) {
          auto r = it->second.rounds.upper_bound(*round);
          if (r != it->second.rounds.begin()) model = std::prev(r)->second;
        }
      }
      if (!model) return send_error(res, 404, "no model of '" + device + "' for " + scenario + " round " + std::to_string(*round));
      downloaded += model->size();
      res.status = 200;
      res.set_content(*model, "application/octet-stream");
    });

    web.post(std::string("/v1/results/") + kName + "/" + kName, [this](const httplib::Request& req, const std::string& text, httplib::Response& res) {
      record(req, text);
      json body = json::parse(text, nullptr, false);
      if (body.is_discarded()) return send_error(res, 400, "the body is not JSON");
      if (!body.is_object()) return send_error(res, 400, "expected a JSON object");
      const std::string scenario = req.matches[1], device = req.matches[2];
      body["scenario"] = scenario;
      body["device"] = device;
      std::lock_guard<std::mutex> lock(mutex);
      if (!owns(req, device)) return send_error(res, 403, "only device '" + device + "' may send its results (" + kDeviceKeyHeader + ")");
      results.push_back(body);
      reported[scenario].insert(device);
      evict(scenario);
      send_json(res, 200, {{"stored", true}});
    });
  }
};

Expected<std::unique_ptr<PeerCoordinator>> PeerCoordinator::start(const PeerCoordinatorOptions& options) {
  if (options.hint_dimensions < 1) return invalid_argument("hints need at least one dimension");
  auto impl = std::make_unique<Impl>(options);
  impl->routes();
  const Status listening = impl->web.start(options.host, options.port);
  if (!listening.is_ok()) return listening;
  return std::unique_ptr<PeerCoordinator>(new PeerCoordinator(std::move(impl)));
}

PeerCoordinator::PeerCoordinator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

PeerCoordinator::~PeerCoordinator() { impl_->web.stop(); }

std::string PeerCoordinator::url() const { return "http://" + impl_->options.host + ":" + std::to_string(impl_->web.port()); }

std::vector<RecordedRequest> PeerCoordinator::traffic() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->traffic;
}

std::vector<nlohmann::json> PeerCoordinator::results() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->results;
}

std::uint64_t PeerCoordinator::bytes_uploaded() const { return impl_->uploaded; }
std::uint64_t PeerCoordinator::bytes_downloaded() const { return impl_->downloaded; }

std::uint64_t PeerCoordinator::bytes_held() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->held_bytes;
}

}  // namespace edgefleet
