// The porting service: a cpp-httplib server over run_port, one adaptation at a time.
#include "edgefleet/port_server.h"

#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/http_service.h"

namespace edgefleet {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using http::send_error;
using http::send_json;

// Goals arrive as small JSON; models leave as files.
http::Limits port_server_limits() {
  http::Limits limits;
  limits.max_body_bytes = 1u << 20;
  limits.max_connections = 32;
  limits.write_timeout_seconds = 600;
  return limits;
}

json goal_json(const GoalResult& g) {
  return {{"goal", g.goal},
          {"parent", g.parent},
          {"constraints_met", g.constraints_met},
          {"accuracy", g.accuracy},
          {"macs", g.cost.macs},
          {"params", g.cost.params},
          {"estimated_latency_ms", g.estimated_latency_ms ? json(*g.estimated_latency_ms) : json(nullptr)},
          {"measured_latency_ms", g.measured_latency_ms},
          {"adapt_seconds", g.adapt_seconds},
          {"finetune_seconds", g.finetune_seconds},
          {"model_file", g.model_file},
          {"card_file", g.card_file}};
}

json goal_only_json(const PortGoal& goal) {
  PortConfig c;
  c.goals = {goal};
  return port_config_to_json(c)["goals"][0];
}

}  // namespace

struct PortServer::Impl {
  PortConfig config;
  PortServerOptions options;
  http::Service web{"the port server", port_server_limits()};
  std::mutex porting;  // one port run at a time; requests queue here

  void routes() {
    web.post("/v1/goals", [this](const httplib::Request&, const std::string& text, httplib::Response& res) {
      const json body = json::parse(text, nullptr, false);
      if (body.is_discarded() || !body.is_object()) return send_error(res, 400, "the body is not a JSON object");
      std::vector<json> incoming;
      if (body.contains("goals")) {
        if (!body["goals"].is_array() || body["goals"].empty()) return send_error(res, 400, "goals must be a non-empty list");
        incoming.assign(body["goals"].begin(), body["goals"].end());
      } else {
        incoming.push_back(body);
      }
      std::lock_guard<std::mutex> lock(porting);
      PortConfig next = config;
      std::vector<std::string> names;
      for (const auto& g : incoming) {
        auto goal = port_goal_from_json(g, "request", options.fleet_dir);
        if (!goal) return send_error(res, 400, goal.status().message());
        bool known = false;
        for (const auto& existing : next.goals) {
          if (existing.name != goal->name) continue;
          known = true;
          if (goal_only_json(existing) != goal_only_json(*goal)) {
            return send_error(res, 409, "goal '" + goal->name + "' exists with other constraints");
          }
        }
        if (!known) next.goals.push_back(*goal);
        names.push_back(goal->name);
      }
      auto result = run_port(next, options.out_dir, options.on_progress);
      if (!result) return http::send_status(res, result.status());
      config = next;
      json answer = json::array();
      for (const auto& name : names) {
        for (const auto& g : result->goals) {
          if (g.goal == name) answer.push_back(goal_json(g));
        }
      }
      send_json(res, 200, {{"goals", answer}});
    });

    web.get("/v1/goals", [this](const httplib::Request&, httplib::Response& res) {
      std::ifstream in(fs::path(options.out_dir) / "port.json");
      const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      res.status = 200;
      res.set_content(text, "application/json");
    });

    web.get("/v1/models/([A-Za-z0-9_.-]+)", [this](const httplib::Request& req, httplib::Response& res) {
      const std::string goal = req.matches[1];
      const fs::path file = fs::path(options.out_dir) / (goal + ".pt");
      bool known = false;
      for (const auto& g : config.goals) known = known || g.name == goal;
      if (!known || !fs::exists(file)) return send_error(res, 404, "no model for goal '" + goal + "'");
      std::ifstream in(file, std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      res.status = 200;
      res.set_content(bytes, "application/octet-stream");
    });
  }
};

Expected<std::unique_ptr<PortServer>> PortServer::start(const PortConfig& config, const PortServerOptions& options) {
  auto first = run_port(config, options.out_dir, options.on_progress);
  if (!first) return first.status();
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  // Goals served before a restart stay in the folder's config: new ones go after them.
  if (auto folder = read_port_config((fs::path(options.out_dir) / "config.json").string(), options.fleet_dir);
      folder && folder->goals.size() > config.goals.size()) {
    impl->config = *folder;
  }
  impl->options = options;
  impl->routes();
  const Status listening = impl->web.start(options.host, options.port);
  if (!listening.is_ok()) return listening;
  return std::unique_ptr<PortServer>(new PortServer(std::move(impl)));
}

PortServer::PortServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

PortServer::~PortServer() { impl_->web.stop(); }

std::string PortServer::url() const { return "http://" + impl_->options.host + ":" + std::to_string(impl_->web.port()); }

}  // namespace edgefleet
