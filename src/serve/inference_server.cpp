#include "edgefleet/inference_server.h"

#include <httplib.h>
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "core/elapsed.h"
#include "core/http_service.h"
#include "core/secret.h"
#include "edgefleet/classifier.h"
#include "edgefleet/decode.h"
#include "edgefleet/kserve.h"
#include "edgefleet/model_repository.h"
#include "edgefleet/preprocess.h"
#include "edgefleet/selection.h"
#include "serve/server_metrics.h"
#include "serve/variant_registry.h"

namespace fs = std::filesystem;

namespace edgefleet {
namespace {

using Clock = std::chrono::steady_clock;
using http::send_error;
using http::send_json;

// When the current request's headers were read: the pre-routing handler runs before httplib
// reads the body, so the handler's start minus this is the body's receive time.
thread_local Clock::time_point t_headers_read;

// An HTTP answer that is not a 200: status plus the one-line message of {"error": ...}.
struct HttpError {
  int status;
  std::string message;
};

// Memory for decoded pictures, shared by every request: a decode waits until its pixels fit,
// so that many large pictures at once cannot exhaust the machine (a 100-megapixel PNG of
// 292 KB decodes to ~390 MB).
class DecodeBudget {
 public:
  explicit DecodeBudget(std::size_t bytes) : total_(std::max<std::size_t>(bytes, 1)) {}

  // Holds `bytes` of the budget until destroyed.
  class Lease {
   public:
    Lease() = default;
    Lease(DecodeBudget* budget, std::size_t bytes) : budget_(budget), bytes_(bytes) {}
    Lease(Lease&& other) noexcept : budget_(std::exchange(other.budget_, nullptr)), bytes_(other.bytes_) {}
    Lease& operator=(Lease&& other) noexcept {
      release();
      budget_ = std::exchange(other.budget_, nullptr);
      bytes_ = other.bytes_;
      return *this;
    }
    ~Lease() { release(); }

   private:
    void release() {
      if (budget_) budget_->release(bytes_);
      budget_ = nullptr;
    }
    DecodeBudget* budget_ = nullptr;
    std::size_t bytes_ = 0;
  };

  // Waits up to `wait` for `bytes` to fit (a request over the whole budget runs alone);
  // nullopt when they did not.
  std::optional<Lease> acquire(std::size_t bytes, std::chrono::milliseconds wait) {
    bytes = std::min(bytes, total_);
    std::unique_lock<std::mutex> lock(mutex_);
    if (!cv_.wait_for(lock, wait, [&] { return used_ + bytes <= total_; })) return std::nullopt;
    used_ += bytes;
    return Lease(this, bytes);
  }

 private:
  void release(std::size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      used_ -= bytes;
    }
    cv_.notify_all();
  }

  const std::size_t total_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::size_t used_ = 0;
};

// Decoded pictures cost about this much memory per pixel at their peak (measured: +390 MB
// for one 10000x10000 PNG).
constexpr std::size_t kDecodeBytesPerPixel = 4;

double number_parameter(const nlohmann::json& parameters, const char* key, double fallback) {
  if (!parameters.contains(key)) return fallback;
  const auto& v = parameters[key];
  if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0) {
    throw HttpError{400, std::string("parameters.") + key + " must be a non-negative number of milliseconds"};
  }
  return v.get<double>();
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

// The request's one input, as images or as a float batch.
struct Batch {
  int n = 0;
  std::vector<Image> images;  // BYTES input: decoded, preprocessed per the chosen card later
  std::vector<DecodeBudget::Lease> decode_memory;  // held while the images are
  std::vector<float> tensor;  // numeric input: already model input
  std::vector<std::int64_t> item_shape;
};

Batch batch_from(InferRequest& request, const DecodeLimits& limits, DecodeBudget& budget) {
  if (request.inputs.size() != 1) {
    throw HttpError{400, "expected exactly one input (an FP32 tensor [N,C,H,W] or BYTES images), got " +
                             std::to_string(request.inputs.size())};
  }
  Tensor& t = request.inputs.front();
  Batch batch;
  if (t.datatype == "BYTES") {
    if (t.bytes.empty()) throw HttpError{400, "input '" + t.name + "' holds no images"};
    for (std::size_t i = 0; i < t.bytes.size(); ++i) {
      std::vector<std::uint8_t> bytes(t.bytes[i].begin(), t.bytes[i].end());
      const std::string origin = "input '" + t.name + "' element " + std::to_string(i);
      // Pixels are known from the header for JPEG, PNG and WebP; other formats reserve the
      // largest picture allowed. Over the limit, the decoder refuses from the header.
      const auto size = probe_image_size(bytes);
      const std::size_t pixels = size ? static_cast<std::size_t>(size->width) * static_cast<std::size_t>(size->height) : limits.max_pixels;
      if (pixels <= limits.max_pixels) {
        auto lease = budget.acquire(pixels * kDecodeBytesPerPixel, std::chrono::seconds(10));
        if (!lease) throw HttpError{503, origin + ": the server's decode memory is busy with other large pictures; retry later"};
        batch.decode_memory.push_back(std::move(*lease));
      }
      auto image = decode_image(bytes, origin, limits);
      if (!image) throw HttpError{400, image.status().message()};
      batch.images.push_back(std::move(image).value());
    }
    batch.n = static_cast<int>(batch.images.size());
    return batch;
  }
  if (t.shape.size() == 3) t.shape.insert(t.shape.begin(), 1);
  if (t.shape.size() != 4 || t.shape[0] < 1) {
    throw HttpError{400, "input '" + t.name + "' has shape " + shape_text(t.shape) + "; expected [N,C,H,W] or [C,H,W]"};
  }
  // Infinity (1e300 in FP32) or NaN would give null or NaN logits with a 200.
  for (std::size_t i = 0; i < t.floats.size(); ++i) {
    if (!std::isfinite(t.floats[i])) {
      throw HttpError{400, "input '" + t.name + "' element " + std::to_string(i) + " is not a finite FP32 number"};
    }
  }
  batch.n = static_cast<int>(t.shape[0]);
  batch.item_shape.assign(t.shape.begin() + 1, t.shape.end());
  batch.tensor = std::move(t.floats);
  return batch;
}

}  // namespace

struct InferenceServer::Impl {
  ServerOptions options;
  std::unique_ptr<SelectionPolicy> default_policy;
  std::map<std::string, std::unique_ptr<SelectionPolicy>> policies;  // every policy, by name

  std::unique_ptr<VariantRegistry> registry;

  ServerMetrics metrics;
  std::unique_ptr<DecodeBudget> decode_budget;
  std::unique_ptr<http::Service> service;
  std::thread poller;
  std::atomic<bool> stopping{false};
  std::mutex stop_mutex;
  std::condition_variable stop_cv;
  bool stopped = false;
  std::atomic<std::uint64_t> rng_counter{0};

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

  nlohmann::json model_metadata(const Registry& r, const std::string& name) {
    std::vector<std::shared_ptr<Variant>> variants;
    if (auto t = r.tasks.find(name); t != r.tasks.end()) variants = t->second;
    else if (auto v = r.variants.find(name); v != r.variants.end()) variants = {v->second};
    else throw HttpError{404, "no model '" + name + "'; GET /v2/repository/index lists them"};
    nlohmann::json versions = nlohmann::json::array(), inputs = nlohmann::json::array();
    std::set<std::vector<std::int64_t>> shapes;
    for (const auto& v : variants) {
      versions.push_back(v->name);
      auto shape = v->item_shape();
      shape.insert(shape.begin(), -1);
      if (shapes.insert(shape).second) inputs.push_back({{"name", "input"}, {"datatype", "FP32"}, {"shape", shape}});
    }
    inputs.push_back({{"name", "image"}, {"datatype", "BYTES"}, {"shape", {-1}}});
    const auto& card = variants.front()->card;
    return {{"name", name},
            {"versions", versions},
            {"platform", "edgefleet_" + model_format_name(card.format)},
            {"inputs", inputs},
            {"outputs", {{{"name", "logits"}, {"datatype", "FP32"}, {"shape", {-1, card.classes}}}}}};
  }

  // The variants a request may run on: the pinned one, or every variant of the task whose
  // input fits the batch.
  std::vector<std::shared_ptr<Variant>> candidates(const Registry& r, const std::string& model, const std::string& version,
                                                   const Batch& batch) {
    std::vector<std::shared_ptr<Variant>> pool;
    if (auto t = r.tasks.find(model); t != r.tasks.end()) {
      if (version.empty()) {
        pool = t->second;
      } else {
        for (const auto& v : t->second) {
          if (v->name == version) pool = {v};
        }
        if (pool.empty()) throw HttpError{404, "task '" + model + "' has no variant '" + version + "'"};
      }
    } else if (auto v = r.variants.find(model); v != r.variants.end()) {
      if (!version.empty() && version != model) throw HttpError{404, "variant '" + model + "' has no version '" + version + "'"};
      pool = {v->second};
    } else {
      throw HttpError{404, "no model '" + model + "'; GET /v2/repository/index lists them"};
    }
    if (batch.images.empty()) {
      std::vector<std::shared_ptr<Variant>> fit;
      for (const auto& v : pool) {
        if (v->item_shape() == batch.item_shape) fit.push_back(v);
      }
      if (fit.empty()) {
        auto expected = pool.front()->item_shape();
        expected.insert(expected.begin(), -1);
        throw HttpError{400, "input shape [" + std::to_string(batch.n) + "," + shape_text(batch.item_shape).substr(1) +
                                 " fits no variant of '" + model + "'; expected " + shape_text(expected)};
      }
      pool = std::move(fit);
      if (static_cast<std::int64_t>(batch.tensor.size()) != batch.n * pool.front()->item_shape()[0] * pool.front()->item_shape()[1] *
                                                               pool.front()->item_shape()[2]) {
        throw HttpError{400, "input data does not fill its shape"};
      }
    }
    return pool;
  }

  void handle_infer(const httplib::Request& req, const std::string& body, httplib::Response& res, const std::string& model,
                    const std::string& version) {
    const auto handler_start = Clock::now();
    const double receive_ms = std::chrono::duration<double, std::milli>(handler_start - t_headers_read).count();
    const auto registry = snapshot();
    // Counted under a loaded task or variant name, else "": label values never come from requests.
    const std::string used_model = registry->tasks.count(model) || registry->variants.count(model) ? model : std::string();
    try {
      auto header_length = parse_header_length(req.get_header_value(kInferenceHeaderContentLength), body.size());
      if (!header_length) throw HttpError{400, header_length.status().message()};
      auto parsed = parse_infer_request(body, header_length.value());
      if (!parsed) throw HttpError{http::status_of(parsed.status()), parsed.status().message()};
      InferRequest& request = parsed.value();
      DecodeLimits limits;
      limits.max_pixels = options.max_image_pixels;
      Batch batch = batch_from(request, limits, *decode_budget);

      const auto pool = candidates(*registry, model, version, batch);

      // Selection.
      const double sla_ms = number_parameter(request.parameters, "sla_ms", options.default_sla_ms);
      const bool client_transfer = request.parameters.contains("transfer_ms");
      const double network_ms = client_transfer ? number_parameter(request.parameters, "transfer_ms", 0.0) : 2.0 * receive_ms;
      const SelectionPolicy* policy = default_policy.get();
      if (request.parameters.contains("policy")) {
        const auto& p = request.parameters["policy"];
        auto it = p.is_string() ? policies.find(p.get<std::string>()) : policies.end();
        if (it == policies.end()) throw HttpError{400, "parameters.policy must be one of the selection policies (" + policy_list() + ")"};
        policy = it->second.get();
      }
      std::vector<VariantProfile> profiles;
      for (const auto& v : pool) profiles.push_back(v->profile());
      Rng rng(options.seed * 0x9E3779B97F4A7C15ull + rng_counter.fetch_add(1));
      const Selection selection = choose_variant(*policy, profiles, {sla_ms, network_ms}, rng);
      const int chosen = selection.variant;
      const bool fits = selection.fits_budget;
      Variant& v = *pool[chosen];

      // Preprocessing per the chosen card.
      std::vector<float> input;
      if (!batch.images.empty()) {
        for (const auto& image : batch.images) {
          auto x = preprocess(image, v.card.input);
          if (!x) throw HttpError{400, x.status().message()};
          input.insert(input.end(), x->begin(), x->end());
        }
      } else {
        input = std::move(batch.tensor);
      }

      // Requested outputs.
      for (const auto& o : request.outputs) {
        if (o.name != "logits") throw HttpError{400, "unknown output '" + o.name + "'; this model has one output, 'logits'"};
      }

      // A model copy: waiting for one is the queue.
      const auto queue_start = Clock::now();
      auto lease = v.acquire(options.max_queue);
      if (!lease) {
        metrics.shed(v.name);
        throw HttpError{503, "variant '" + v.name + "' has " + std::to_string(v.queued()) + " requests queued (the limit); retry later"};
      }
      const double queue_ms = ms_since(queue_start);
      std::vector<float> logits;
      const auto infer_start = Clock::now();
      {
        auto out = lease->model().infer(input.data(), batch.n);
        if (!out) throw HttpError{http::status_of(out.status()), out.status().message()};
        logits = std::move(out).value();
      }
      lease.reset();
      const double infer_ms = ms_since(infer_start);
      v.record((queue_ms + infer_ms) / batch.n);
      ++v.requests;

      InferResponse response;
      response.model_name = model;
      response.model_version = v.name;
      response.id = request.id;
      Tensor out;
      out.name = "logits";
      out.datatype = "FP32";
      out.shape = {batch.n, v.card.classes};
      out.floats = std::move(logits);
      const int classification = request.outputs.empty() ? 0 : request.outputs.front().classification;
      if (classification > 0) out = classification_tensor(out, v.card, classification);
      response.outputs.push_back(std::move(out));
      const double server_ms = ms_since(handler_start);
      const VariantProfile& predicted = profiles[chosen];
      response.parameters = {{"variant", v.name},
                             {"task", v.task},
                             {"policy", pool.size() > 1 && sla_ms > 0 ? policy->name() : std::string("pinned")},
                             {"sla_ms", sla_ms},
                             {"network_ms", network_ms},
                             {"network_from", client_transfer ? "transfer_ms" : "receive time"},
                             {"budget_ms", sla_ms > 0 ? sla_ms - network_ms : 0.0},
                             {"predicted_ms", predicted.mean_ms},
                             {"predicted_std_ms", predicted.std_ms},
                             {"fits_budget", fits},
                             {"queue_ms", queue_ms},
                             {"infer_ms", infer_ms},
                             {"server_ms", server_ms}};
      const bool binary = request.binary_output || (!request.outputs.empty() && request.outputs.front().binary);
      EncodedMessage message = encode_infer_response(response, binary);
      if (message.has_binary()) {
        res.set_header(kInferenceHeaderContentLength, std::to_string(message.json_length));
        res.set_content(std::move(message.body), "application/octet-stream");
      } else {
        res.set_content(std::move(message.body), "application/json");
      }
      res.status = 200;
      const bool missed = sla_ms > 0 && network_ms + server_ms > sla_ms;
      metrics.request(used_model, v.name, 200, server_ms / 1000.0, queue_ms / 1000.0, missed);
    } catch (const HttpError& e) {
      send_error(res, e.status, e.message);
      metrics.request(used_model, "", e.status, ms_since(handler_start) / 1000.0, 0.0, false);
    } catch (const Error& e) {
      send_error(res, http::status_of(e.status()), e.status().message());
      metrics.request(used_model, "", http::status_of(e.status()), ms_since(handler_start) / 1000.0, 0.0, false);
    } catch (const std::exception& e) {
      send_error(res, 500, first_meaningful_line(e.what()));
      metrics.request(used_model, "", 500, ms_since(handler_start) / 1000.0, 0.0, false);
    }
  }

  // Triton's classification extension: the top-k classes as "score:index[:label]".
  static Tensor classification_tensor(const Tensor& logits, const ModelCard& card, int k) {
    Tensor t;
    t.name = "logits";
    t.datatype = "BYTES";
    const int classes = card.classes;
    const int n = static_cast<int>(logits.shape[0]);
    k = std::min(k, classes);
    t.shape = {n, k};
    for (int i = 0; i < n; ++i) {
      const float* row = logits.floats.data() + static_cast<std::size_t>(i) * classes;
      std::vector<int> order(classes);
      for (int c = 0; c < classes; ++c) order[c] = c;
      std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int a, int b) { return row[a] > row[b]; });
      for (int j = 0; j < k; ++j) {
        std::ostringstream s;
        s << row[order[j]] << ":" << order[j];
        if (static_cast<int>(card.labels.size()) == classes) s << ":" << card.labels[order[j]];
        t.bytes.push_back(s.str());
      }
    }
    return t;
  }

  std::string policy_list() const {
    std::string s;
    for (const auto& name : policy_names()) s += (s.empty() ? "" : ", ") + name;
    return s;
  }

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
      const bool ready = !snapshot()->variants.empty() && !stopping;
      send_json(res, ready ? 200 : 503, {{"ready", ready}});
    });
    web.get("/v2", [](const httplib::Request&, httplib::Response& res) {
      send_json(res, 200,
                {{"name", "edgefleet"}, {"version", "0.1.0"}, {"extensions", {"binary_tensor_data", "classification", "model_repository"}}});
    });
    static const std::string kModel = R"(/v2/models/([^/]+)(?:/versions/([^/]+))?)";
    web.get(kModel, [this](const httplib::Request& req, httplib::Response& res) {
      try {
        auto meta = model_metadata(*snapshot(), req.matches[1]);
        const std::string version = req.matches[2];
        if (!version.empty()) {
          const auto& versions = meta["versions"];
          if (std::find(versions.begin(), versions.end(), version) == versions.end()) {
            throw HttpError{404, "model '" + std::string(req.matches[1]) + "' has no version '" + version + "'"};
          }
        }
        send_json(res, 200, meta);
      } catch (const HttpError& e) {
        send_error(res, e.status, e.message);
      }
    });
    web.get(kModel + "/ready", [this](const httplib::Request& req, httplib::Response& res) {
      const auto r = snapshot();
      const std::string name = req.matches[1], version = req.matches[2];
      bool ready = r->tasks.count(name) || r->variants.count(name);
      if (ready && !version.empty()) ready = r->variants.count(version) && r->variants.at(version)->task == name;
      if (!ready) return send_error(res, 404, "no model '" + name + (version.empty() ? "" : "' version '" + version) + "' is loaded");
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
  if (options.max_queue < 0) return invalid_argument("max_queue must be >= 0");
  if (options.http_threads < 1) return invalid_argument("http_threads must be >= 1");
  if (options.instances_per_variant < 1) return invalid_argument("instances_per_variant must be >= 1");
  if (options.max_image_pixels < 1) return invalid_argument("max_image_pixels must be >= 1");
  if (options.read_timeout_seconds < 1) return invalid_argument("read_timeout_seconds must be >= 1");
  impl->decode_budget = std::make_unique<DecodeBudget>(options.decode_budget_bytes);
  auto policy = make_policy(options.policy);
  if (!policy) return policy.status();
  impl->default_policy = std::move(policy).value();
  for (const auto& name : policy_names()) impl->policies[name] = make_policy(name).value();
  impl->options = std::move(options);
  impl->registry = std::make_unique<VariantRegistry>(RegistryOptions{impl->options.repository, impl->options.require_sha256,
                                                                     impl->options.instances_per_variant, impl->options.engine_threads,
                                                                     impl->options.warmup_runs, impl->options.log});
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
  if (s.poller.joinable()) s.poller.join();
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
