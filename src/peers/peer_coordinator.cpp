// The peer coordinator: models and hints in memory behind a cpp-httplib server.
#include "edgefleet/peer_coordinator.h"

#include <httplib.h>
#include <torch/script.h>

#include <atomic>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "serve/http_listener.h"

namespace edgefleet {
namespace {

using nlohmann::json;

constexpr const char* kName = "([A-Za-z0-9_.-]+)";

void reply_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void reply_error(httplib::Response& res, int status, const std::string& message) { reply_json(res, status, {{"error", message}}); }

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

}  // namespace

struct PeerCoordinator::Impl {
  struct DeviceModels {
    std::map<int, std::shared_ptr<const std::string>> rounds;
    bool final = false;
  };

  PeerCoordinatorOptions options;
  httplib::Server http;
  HttpListener listener;

  mutable std::mutex mutex;
  LshIndex index;
  std::map<std::string, std::vector<double>> hints;
  std::map<std::pair<std::string, std::string>, DeviceModels> models;  // (scenario, device)
  std::vector<json> results;
  std::vector<RecordedRequest> traffic;
  std::atomic<std::uint64_t> uploaded{0}, downloaded{0};

  explicit Impl(const PeerCoordinatorOptions& o) : options(o), index(o.hint_dimensions, o.lsh) {}

  void record(const httplib::Request& req) {
    if (!options.record_traffic) return;
    std::string path = req.path;
    std::string query;
    for (const auto& [key, value] : req.params) query += (query.empty() ? "?" : "&") + key + "=" + value;
    std::lock_guard<std::mutex> lock(mutex);
    traffic.push_back({req.method, path + query, req.body});
  }

  bool has_round(const std::string& scenario, const std::string& device, int round) const {
    const auto it = models.find({scenario, device});
    if (it == models.end()) return false;
    return it->second.final || (!it->second.rounds.empty() && it->second.rounds.rbegin()->first >= round);
  }

  void routes() {
    http.Post(std::string("/v1/devices/") + kName, [this](const httplib::Request& req, httplib::Response& res) {
      record(req);
      const std::string device = req.matches[1];
      json body;
      try {
        body = json::parse(req.body);
      } catch (const json::exception&) {
        return reply_error(res, 400, "the body is not JSON");
      }
      if (!body.is_object() || !body.contains("hint") || !body["hint"].is_array()) return reply_error(res, 400, "expected {\"hint\": [numbers]}");
      std::vector<double> hint;
      for (const auto& x : body["hint"]) {
        if (!x.is_number()) return reply_error(res, 400, "hint values must be numbers");
        hint.push_back(x.get<double>());
      }
      std::lock_guard<std::mutex> lock(mutex);
      const Status inserted = index.insert(device, hint);
      if (!inserted.is_ok()) return reply_error(res, 400, inserted.message());
      hints[device] = hint;
      reply_json(res, 200, {{"registered", device}, {"devices", hints.size()}});
    });

    http.Put(std::string("/v1/models/") + kName + "/" + kName + "/([0-9]+)", [this](const httplib::Request& req, httplib::Response& res) {
      record(req);
      const std::string scenario = req.matches[1], device = req.matches[2];
      const auto round = parse_round(req.matches[3]);
      if (!round) return reply_error(res, 400, "bad round");
      // Only models get in: a body that does not load as TorchScript is refused.
      try {
        std::istringstream in(req.body);
        torch::jit::load(in);
      } catch (const std::exception&) {
        return reply_error(res, 400, "the body is not a TorchScript model");
      }
      uploaded += req.body.size();
      std::lock_guard<std::mutex> lock(mutex);
      if (!hints.count(device)) return reply_error(res, 404, "device '" + device + "' is not registered");
      auto& slot = models[{scenario, device}];
      slot.rounds[*round] = std::make_shared<const std::string>(req.body);
      if (req.get_param_value("final") == "1") slot.final = true;
      reply_json(res, 200, {{"stored", device}, {"round", *round}});
    });

    http.Get(std::string("/v1/peers/") + kName + "/" + kName + "/([0-9]+)", [this](const httplib::Request& req, httplib::Response& res) {
      record(req);
      const std::string scenario = req.matches[1], device = req.matches[2];
      const auto round = parse_round(req.matches[3]);
      const auto k = parse_round(req.get_param_value("k"));
      if (!round) return reply_error(res, 400, "bad round");
      if (!k || *k < 1) return reply_error(res, 400, "k must be a positive integer");
      std::lock_guard<std::mutex> lock(mutex);
      const auto hint = hints.find(device);
      if (hint == hints.end()) return reply_error(res, 404, "device '" + device + "' is not registered");
      if (hints.size() < static_cast<std::size_t>(*k) + 1) {
        return reply_json(res, 202, {{"waiting", "registrations"}, {"devices", hints.size()}});
      }
      auto peers = index.nearest(hint->second, static_cast<std::size_t>(*k), device);
      if (!peers) return reply_error(res, 400, peers.status().message());
      json waiting = json::array();
      for (const auto& p : *peers) {
        if (!has_round(scenario, p, *round)) waiting.push_back(p);
      }
      if (!waiting.empty()) return reply_json(res, 202, {{"waiting", waiting}});
      reply_json(res, 200, {{"peers", *peers}, {"compared", index.last_compared()}});
    });

    http.Get(std::string("/v1/models/") + kName + "/" + kName + "/([0-9]+)", [this](const httplib::Request& req, httplib::Response& res) {
      record(req);
      const std::string scenario = req.matches[1], device = req.matches[2];
      const auto round = parse_round(req.matches[3]);
      if (!round) return reply_error(res, 400, "bad round");
      std::shared_ptr<const std::string> model;
      {
        std::lock_guard<std::mutex> lock(mutex);
        const auto it = models.find({scenario, device});
        if (it != models.end()) {
          auto r = it->second.rounds.upper_bound(*round);
          if (r != it->second.rounds.begin()) model = std::prev(r)->second;
        }
      }
      if (!model) return reply_error(res, 404, "no model of '" + device + "' for " + scenario + " round " + std::to_string(*round));
      downloaded += model->size();
      res.status = 200;
      res.set_content(*model, "application/octet-stream");
    });

    http.Post(std::string("/v1/results/") + kName + "/" + kName, [this](const httplib::Request& req, httplib::Response& res) {
      record(req);
      json body;
      try {
        body = json::parse(req.body);
      } catch (const json::exception&) {
        return reply_error(res, 400, "the body is not JSON");
      }
      if (!body.is_object()) return reply_error(res, 400, "expected a JSON object");
      body["scenario"] = std::string(req.matches[1]);
      body["device"] = std::string(req.matches[2]);
      std::lock_guard<std::mutex> lock(mutex);
      results.push_back(body);
      reply_json(res, 200, {{"stored", true}});
    });
  }
};

Expected<std::unique_ptr<PeerCoordinator>> PeerCoordinator::start(const PeerCoordinatorOptions& options) {
  if (options.hint_dimensions < 1) return invalid_argument("hints need at least one dimension");
  auto impl = std::make_unique<Impl>(options);
  impl->routes();
  impl->http.set_payload_max_length(512ull << 20);
  impl->http.set_tcp_nodelay(true);
  const Status listening = impl->listener.start(impl->http, options.host, options.port, "the peer coordinator");
  if (!listening.is_ok()) return listening;
  return std::unique_ptr<PeerCoordinator>(new PeerCoordinator(std::move(impl)));
}

PeerCoordinator::PeerCoordinator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

PeerCoordinator::~PeerCoordinator() { impl_->listener.stop(); }

std::string PeerCoordinator::url() const { return "http://" + impl_->options.host + ":" + std::to_string(impl_->listener.port()); }

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

}  // namespace edgefleet
