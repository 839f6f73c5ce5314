#include "edgefleet/inference_server.h"

#include <httplib.h>
#include <malloc.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "core/elapsed.h"
#include "core/http_service.h"
#include "core/secret.h"
#include "edgefleet/kserve.h"
#include "edgefleet/model_repository.h"
#include "serve/grpc_frontend.h"
#include "serve/inference_core.h"
#include "serve/server_metrics.h"
#include "serve/variant_registry.h"

namespace edgefleet {
namespace {

using Clock = std::chrono::steady_clock;
using http::send_error;
using http::send_json;

// When the current request's headers were read: the pre-routing handler runs before httplib
// reads the body, so the handler's start minus this is the body's receive time.
thread_local Clock::time_point t_headers_read;

// The process keeps freed memory for reuse (core/allocator.h: inference would otherwise
// page-fault its buffers in again on every pass), so the memory of a large request body stays
// with the process once the request is done. For a second after one, the trimmer gives free
// memory back every 200 ms (the body is freed only after its response is sent).
constexpr std::size_t kTrimAfterBodyBytes = 8u << 20;
constexpr std::chrono::milliseconds kTrimPeriod{200};
constexpr std::chrono::seconds kTrimFor{1};

}  // namespace

struct InferenceServer::Impl {
  ServerOptions options;
  std::unique_ptr<VariantRegistry> registry;
  ServerMetrics metrics;
  std::unique_ptr<InferenceCore> core;
  std::unique_ptr<http::Service> service;
  std::unique_ptr<GrpcFrontend> grpc;
  std::thread poller;
  std::thread trimmer;
  std::atomic<Clock::rep> last_large_body{0};  // steady-clock ticks when the last large body's handler ended
  std::atomic<bool> stopping{false};
  std::mutex stop_mutex;
  std::condition_variable stop_cv;
  bool stopped = false;

  void log(const std::string& line) const {
    if (options.log) options.log(line);
  }

  std::shared_ptr<const Registry> snapshot() const { return registry->snapshot(); }
  Status load(const std::string& name) { return registry->load(name); }
  Status unload(const std::string& name) { return registry->unload(name); }
  Status sync() { return registry->sync(); }

  // ---- HTTP ----

  bool authorized(const httplib::Request& req) const {
    if (options.token.empty()) return true;
    return same_secret(req.get_header_value("Authorization"), "Bearer " + options.token);
  }

  void handle_infer(const httplib::Request& req, const std::string& body, httplib::Response& res, const std::string& model,
                    const std::string& version) {
    const auto handler_start = Clock::now();
    // Marked when the handler ends, whichever way: the body is freed right after.
    struct MarkLargeBody {
      std::atomic<Clock::rep>* last;
      ~MarkLargeBody() {
        if (last) *last = Clock::now().time_since_epoch().count();
      }
    } mark{body.size() >= kTrimAfterBodyBytes ? &last_large_body : nullptr};
    const double receive_ms = std::chrono::duration<double, std::milli>(handler_start - t_headers_read).count();
    const std::string label = core->metric_label(model);
    const auto refuse = [&](const Status& status) {
      http::send_status(res, status);
      metrics.request(label, "", http::status_of(status), ms_since(handler_start) / 1000.0, 0.0, false);
    };
    auto header_length = parse_header_length(req.get_header_value(kInferenceHeaderContentLength), body.size());
    if (!header_length) return refuse(invalid_argument(header_length.status().message()));
    auto request = parse_infer_request(body, header_length.value());
    if (!request) return refuse(request.status());
    const bool binary = request->binary_output || (!request->outputs.empty() && request->outputs.front().binary);
    auto response = core->infer(std::move(request).value(), {model, version, receive_ms});
    if (!response) return refuse(response.status());
    EncodedMessage message = encode_infer_response(response.value(), binary);
    if (message.has_binary()) {
      res.set_header(kInferenceHeaderContentLength, std::to_string(message.json_length));
      res.set_content(std::move(message.body), "application/octet-stream");
    } else {
      res.set_content(std::move(message.body), "application/json");
    }
    res.status = 200;
    metrics.answered(label, response.value(), ms_since(handler_start) / 1000.0);
  }

  bool ready() const { return !snapshot()->variants.empty() && !stopping; }

  void routes(http::Service& web) {
    web.set_guard([this](const httplib::Request& req, httplib::Response& res) {
      t_headers_read = Clock::now();
      if (req.path.rfind("/v2/health/", 0) == 0 || authorized(req)) return false;
      res.set_header("WWW-Authenticate", "Bearer");
      send_error(res, 401, "missing or wrong bearer token");
      metrics.request("", "", 401, 0.0, 0.0, false);
      return true;
    });
    web.on_refusal([this](int status) { metrics.request("", "", status, 0.0, 0.0, false); });
    web.get("/v2/health/live", [](const httplib::Request&, httplib::Response& res) { send_json(res, 200, {{"live", true}}); });
    web.get("/v2/health/ready", [this](const httplib::Request&, httplib::Response& res) {
      const bool is_ready = ready();
      send_json(res, is_ready ? 200 : 503, {{"ready", is_ready}});
    });
    web.get("/v2", [](const httplib::Request&, httplib::Response& res) {
      send_json(res, 200,
                {{"name", kServerName}, {"version", kServerVersion}, {"extensions", {"binary_tensor_data", "classification", "model_repository"}}});
    });
    static const std::string kModel = R"(/v2/models/([^/]+)(?:/versions/([^/]+))?)";
    web.get(kModel, [this](const httplib::Request& req, httplib::Response& res) {
      auto meta = core->metadata(req.matches[1], req.matches[2]);
      if (!meta) return http::send_status(res, meta.status());
      send_json(res, 200, meta.value());
    });
    web.get(kModel + "/ready", [this](const httplib::Request& req, httplib::Response& res) {
      const std::string name = req.matches[1], version = req.matches[2];
      if (!core->ready(name, version)) {
        return send_error(res, 404, "no model '" + name + (version.empty() ? "" : "' version '" + version) + "' is loaded");
      }
      send_json(res, 200, {{"name", name}, {"ready", true}});
    });
    web.post(kModel + "/infer", [this](const httplib::Request& req, const std::string& body, httplib::Response& res) {
      handle_infer(req, body, res, req.matches[1], req.matches[2]);
    });
    web.post("/v2/repository/index", [this](const httplib::Request&, const std::string&, httplib::Response& res) {
      auto entries = scan_repository(options.repository);
      if (!entries) return http::send_status(res, entries.status());
      const auto r = snapshot();
      nlohmann::json index = nlohmann::json::array();
      for (const auto& e : entries.value()) {
        index.push_back({{"name", e.variant}, {"task", e.task}, {"state", r->variants.count(e.variant) ? "READY" : "UNAVAILABLE"}});
      }
      send_json(res, 200, index);
    });
    web.post(R"(/v2/repository/models/([^/]+)/(load|unload))", [this](const httplib::Request& req, const std::string&, httplib::Response& res) {
      const std::string name = req.matches[1];
      const Status s = req.matches[2] == "load" ? load(name) : unload(name);
      if (!s.is_ok()) return http::send_status(res, s);
      send_json(res, 200, nlohmann::json::object());
    });
    web.get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      std::vector<VariantProfile> profiles;
      for (const auto& [name, v] : snapshot()->variants) profiles.push_back(v->profile());
      res.set_content(metrics.prometheus_text(profiles), "text/plain; version=0.0.4");
    });
  }
};

InferenceServer::InferenceServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

InferenceServer::~InferenceServer() { stop(); }

Expected<std::unique_ptr<InferenceServer>> InferenceServer::create(ServerOptions options) {
  auto impl = std::make_unique<Impl>();
  if (options.http_threads < 1) return invalid_argument("http_threads must be >= 1");
  if (options.max_queue < 0) return invalid_argument("max_queue must be >= 0");
  if (options.max_batch < 1) return invalid_argument("max_batch must be >= 1");
  if (!(options.max_queue_delay_ms >= 0) || !std::isfinite(options.max_queue_delay_ms)) {
    return invalid_argument("max_queue_delay_ms must be a non-negative number");
  }
  if (options.instances_per_variant < 1) return invalid_argument("instances_per_variant must be >= 1");
  if (options.read_timeout_seconds < 1) return invalid_argument("read_timeout_seconds must be >= 1");
  impl->options = std::move(options);
  const ServerOptions& o = impl->options;
  impl->registry = std::make_unique<VariantRegistry>(RegistryOptions{o.repository, o.require_sha256, o.instances_per_variant,
                                                                     o.engine_threads, o.warmup_runs, o.log,
                                                                     BatchingOptions{o.max_batch, o.max_queue_delay_ms, o.max_queue}});
  auto core = InferenceCore::create({o.policy, o.default_sla_ms, o.max_image_pixels, o.decode_budget_bytes, o.seed},
                                    *impl->registry, impl->metrics);
  if (!core) return core.status();
  impl->core = std::move(core).value();
  auto entries = scan_repository(impl->options.repository);
  if (!entries) return entries.status();
  if (entries->empty()) return invalid_argument("model repository '" + impl->options.repository + "' holds no variants (expected TASK/VARIANT/card.json)");
  const Status loaded = impl->registry->load_entries(entries.value());
  if (!loaded.is_ok()) return loaded;
  return std::unique_ptr<InferenceServer>(new InferenceServer(std::move(impl)));
}

Status InferenceServer::start() {
  Impl& s = *impl_;
  http::Limits limits;
  limits.max_body_bytes = s.options.max_body_bytes;
  limits.max_connections = s.options.http_threads;
  limits.read_timeout_seconds = s.options.read_timeout_seconds;
  s.service = std::make_unique<http::Service>("the inference server", limits);
  s.routes(*s.service);
  const Status listening = s.service->start(s.options.host, s.options.port);
  if (!listening.is_ok()) return listening;
  if (s.options.grpc_port >= 0) {
    auto grpc = GrpcFrontend::start({s.options.host, s.options.grpc_port, s.options.token, s.options.max_body_bytes,
                                     s.options.http_threads},
                                    *s.core, s.metrics, [&s] { return s.ready(); });
    if (!grpc) {
      s.service->stop();
      return grpc.status();
    }
    s.grpc = std::move(grpc).value();
  }
  s.trimmer = std::thread([&s] {
    std::unique_lock<std::mutex> lock(s.stop_mutex);
    while (!s.stop_cv.wait_for(lock, kTrimPeriod, [&] { return s.stopped; })) {
      const Clock::time_point large{Clock::duration{s.last_large_body.load()}};
      if (s.last_large_body.load() != 0 && Clock::now() - large < kTrimFor) malloc_trim(0);
    }
  });
  if (s.options.poll_seconds > 0) {
    s.poller = std::thread([&s] {
      std::unique_lock<std::mutex> lock(s.stop_mutex);
      while (!s.stop_cv.wait_for(lock, std::chrono::duration<double>(s.options.poll_seconds), [&] { return s.stopped; })) {
        lock.unlock();
        s.sync();
        lock.lock();
      }
    });
  }
  s.log("serving " + s.options.repository + " on http://" + s.options.host + ":" + std::to_string(port()));
  return Status::ok();
}

int InferenceServer::port() const { return impl_->service ? impl_->service->port() : 0; }
int InferenceServer::grpc_port() const { return impl_->grpc ? impl_->grpc->port() : 0; }

void InferenceServer::stop() {
  Impl& s = *impl_;
  {
    std::lock_guard<std::mutex> lock(s.stop_mutex);
    if (s.stopped) return;
    s.stopped = true;
    s.stopping = true;
  }
  s.stop_cv.notify_all();
  // httplib's stop closes the listening socket; its thread pool then finishes the requests it
  // holds before the listener returns.
  if (s.service) s.service->stop();
  if (s.grpc) s.grpc->stop();
  if (s.poller.joinable()) s.poller.join();
  if (s.trimmer.joinable()) s.trimmer.join();
  s.log("stopped");
}

void InferenceServer::wait() {
  Impl& s = *impl_;
  std::unique_lock<std::mutex> lock(s.stop_mutex);
  s.stop_cv.wait(lock, [&] { return s.stopped; });
}

Status InferenceServer::load(const std::string& name) { return impl_->load(name); }
Status InferenceServer::unload(const std::string& name) { return impl_->unload(name); }
Status InferenceServer::sync_repository() { return impl_->sync(); }

std::vector<VariantStatus> InferenceServer::variants() const {
  std::vector<VariantStatus> out;
  for (const auto& [name, v] : impl_->snapshot()->variants) {
    const auto p = v->profile();
    out.push_back({v->task, v->name, p.accuracy, p.mean_ms, p.std_ms, v->requests.load()});
  }
  return out;
}

}  // namespace edgefleet
