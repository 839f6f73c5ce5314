#include "serve/inference_core.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <utility>

#include "core/elapsed.h"
#include "core/top_k.h"
#include "edgefleet/decode.h"
#include "edgefleet/preprocess.h"

namespace edgefleet {

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

namespace {

using Clock = std::chrono::steady_clock;

// Decoded pictures cost about this much memory per pixel at their peak (measured: +390 MB
// for one 10000x10000 PNG).
constexpr std::size_t kDecodeBytesPerPixel = 4;

// Requests without an SLA are queued as if due this long after arrival.
constexpr double kNoDeadlineMs = 10'000.0;
constexpr double kLatestDeadlineMs = 1e9;  // ~11 days

[[noreturn]] void fail(Status status) { throw Error(std::move(status)); }

double number_parameter(const nlohmann::json& parameters, const char* key, double fallback) {
  if (!parameters.contains(key)) return fallback;
  const auto& v = parameters[key];
  if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0) {
    fail(invalid_argument(std::string("parameters.") + key + " must be a non-negative number of milliseconds"));
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
    fail(invalid_argument("expected exactly one input (an FP32 tensor [N,C,H,W] or BYTES images), got " +
                          std::to_string(request.inputs.size())));
  }
  Tensor& t = request.inputs.front();
  Batch batch;
  if (t.datatype == "BYTES") {
    if (t.bytes.empty()) fail(invalid_argument("input '" + t.name + "' holds no images"));
    for (std::size_t i = 0; i < t.bytes.size(); ++i) {
      std::vector<std::uint8_t> bytes(t.bytes[i].begin(), t.bytes[i].end());
      const std::string origin = "input '" + t.name + "' element " + std::to_string(i);
      // Pixels are known from the header for JPEG, PNG and WebP; other formats reserve the
      // largest picture allowed. Over the limit, the decoder refuses from the header.
      const auto size = probe_image_size(bytes);
      const std::size_t pixels = size ? static_cast<std::size_t>(size->width) * static_cast<std::size_t>(size->height) : limits.max_pixels;
      if (pixels <= limits.max_pixels) {
        auto lease = budget.acquire(pixels * kDecodeBytesPerPixel, std::chrono::seconds(10));
        if (!lease) fail(unavailable(origin + ": the server's decode memory is busy with other large pictures; retry later"));
        batch.decode_memory.push_back(std::move(*lease));
      }
      auto image = decode_image(bytes, origin, limits);
      if (!image) fail(invalid_argument(image.status().message()));
      batch.images.push_back(std::move(image).value());
    }
    batch.n = static_cast<int>(batch.images.size());
    return batch;
  }
  if (t.shape.size() == 3) t.shape.insert(t.shape.begin(), 1);
  if (t.shape.size() != 4 || t.shape[0] < 1) {
    fail(invalid_argument("input '" + t.name + "' has shape " + shape_text(t.shape) + "; expected [N,C,H,W] or [C,H,W]"));
  }
  // Infinity (1e300 in FP32) or NaN would give null or NaN logits with a 200.
  for (std::size_t i = 0; i < t.floats.size(); ++i) {
    if (!std::isfinite(t.floats[i])) {
      fail(invalid_argument("input '" + t.name + "' element " + std::to_string(i) + " is not a finite FP32 number"));
    }
  }
  batch.n = static_cast<int>(t.shape[0]);
  batch.item_shape.assign(t.shape.begin() + 1, t.shape.end());
  batch.tensor = std::move(t.floats);
  return batch;
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
      if (pool.empty()) fail(not_found("task '" + model + "' has no variant '" + version + "'"));
    }
  } else if (auto v = r.variants.find(model); v != r.variants.end()) {
    if (!version.empty() && version != model) fail(not_found("variant '" + model + "' has no version '" + version + "'"));
    pool = {v->second};
  } else {
    fail(not_found("no model '" + model + "'; GET /v2/repository/index lists them"));
  }
  if (batch.images.empty()) {
    std::vector<std::shared_ptr<Variant>> fit;
    for (const auto& v : pool) {
      if (v->item_shape() == batch.item_shape) fit.push_back(v);
    }
    if (fit.empty()) {
      auto expected = pool.front()->item_shape();
      expected.insert(expected.begin(), -1);
      fail(invalid_argument("input shape [" + std::to_string(batch.n) + "," + shape_text(batch.item_shape).substr(1) +
                            " fits no variant of '" + model + "'; expected " + shape_text(expected)));
    }
    pool = std::move(fit);
    const auto shape = pool.front()->item_shape();
    if (static_cast<std::int64_t>(batch.tensor.size()) != batch.n * shape[0] * shape[1] * shape[2]) {
      fail(invalid_argument("input data does not fill its shape"));
    }
  }
  return pool;
}

// Triton's classification extension: the top-k classes as "score:index[:label]".
Tensor classification_tensor(const Tensor& logits, const ModelCard& card, int k) {
  Tensor t;
  t.name = "logits";
  t.datatype = "BYTES";
  const int classes = card.classes;
  const int n = static_cast<int>(logits.shape[0]);
  k = std::min(k, classes);
  t.shape = {n, k};
  for (int i = 0; i < n; ++i) {
    const float* row = logits.floats.data() + static_cast<std::size_t>(i) * classes;
    for (int c : top_k_indices(row, classes, k)) {
      std::ostringstream s;
      s << row[c] << ":" << c;
      if (static_cast<int>(card.labels.size()) == classes) s << ":" << card.labels[c];
      t.bytes.push_back(s.str());
    }
  }
  return t;
}

std::string policy_list() {
  std::string s;
  for (const auto& name : policy_names()) s += (s.empty() ? "" : ", ") + name;
  return s;
}

}  // namespace

InferenceCore::InferenceCore(InferenceCoreOptions options, const VariantRegistry& registry, ServerMetrics& metrics)
    : options_(std::move(options)), registry_(registry), metrics_(metrics) {}

InferenceCore::~InferenceCore() = default;

Expected<std::unique_ptr<InferenceCore>> InferenceCore::create(InferenceCoreOptions options, const VariantRegistry& registry,
                                                               ServerMetrics& metrics) {
  if (options.max_image_pixels < 1) return invalid_argument("max_image_pixels must be >= 1");
  if (!std::isfinite(options.default_sla_ms) || options.default_sla_ms < 0) return invalid_argument("default_sla_ms must be >= 0");
  std::unique_ptr<InferenceCore> core(new InferenceCore(options, registry, metrics));
  for (const auto& name : policy_names()) {
    auto policy = make_policy(name);
    if (!policy) return policy.status();
    core->policies_[name] = std::move(policy).value();
  }
  const auto chosen = core->policies_.find(options.policy);
  if (chosen == core->policies_.end()) return make_policy(options.policy).status();
  core->default_policy_ = chosen->second.get();
  core->decode_budget_ = std::make_unique<DecodeBudget>(options.decode_budget_bytes);
  return core;
}

std::string InferenceCore::metric_label(const std::string& model) const {
  const auto r = registry_.snapshot();
  return r->tasks.count(model) || r->variants.count(model) ? model : std::string();
}

Expected<InferResponse> InferenceCore::infer(InferRequest request, const InferTarget& target) {
  return capture([&]() -> InferResponse {
    const auto start = Clock::now();
    const auto registry = registry_.snapshot();
    DecodeLimits limits;
    limits.max_pixels = options_.max_image_pixels;
    Batch batch = batch_from(request, limits, *decode_budget_);
    const auto pool = candidates(*registry, target.model, target.version, batch);
    for (const auto& o : request.outputs) {
      if (o.name != "logits") fail(invalid_argument("unknown output '" + o.name + "'; this model has one output, 'logits'"));
    }

    // Selection.
    const double sla_ms = number_parameter(request.parameters, "sla_ms", options_.default_sla_ms);
    const bool client_transfer = request.parameters.contains("transfer_ms");
    const double network_ms = client_transfer ? number_parameter(request.parameters, "transfer_ms", 0.0) : 2.0 * target.receive_ms;
    const SelectionPolicy* policy = default_policy_;
    if (request.parameters.contains("policy")) {
      const auto& p = request.parameters["policy"];
      auto it = p.is_string() ? policies_.find(p.get<std::string>()) : policies_.end();
      if (it == policies_.end()) fail(invalid_argument("parameters.policy must be one of the selection policies (" + policy_list() + ")"));
      policy = it->second.get();
    }
    std::vector<VariantProfile> profiles;
    for (const auto& v : pool) profiles.push_back(v->profile());
    Rng rng(options_.seed * 0x9E3779B97F4A7C15ull + rng_counter_.fetch_add(1));
    const Selection selection = choose_variant(*policy, profiles, {sla_ms, network_ms}, rng);
    Variant& v = *pool[selection.variant];

    // Preprocessing per the chosen card.
    std::vector<float> input;
    if (!batch.images.empty()) {
      for (const auto& image : batch.images) {
        auto x = preprocess(image, v.card.input);
        if (!x) fail(invalid_argument(x.status().message()));
        input.insert(input.end(), x->begin(), x->end());
      }
      batch.images.clear();  // their memory goes back to the decode budget
      batch.decode_memory.clear();
    } else {
      input = std::move(batch.tensor);
    }

    // The deadline: the budget left after the network, counted from arrival. A request that
    // could still meet it if run now is dropped if its deadline passes while queued; one whose
    // remaining budget cannot cover even an immediate run of the chosen variant (its budget
    // gone on arrival, or eaten by decoding) gets the policy's fallback, as in the paper, and
    // is run. Without an SLA it is ordered as if due kNoDeadlineMs after arrival, so that it
    // cannot starve.
    const double budget_ms = sla_ms - network_ms;
    // Capped so that a huge sla_ms cannot overflow the clock's integer ticks.
    const double due_ms = std::min(sla_ms <= 0 ? kNoDeadlineMs : std::max(budget_ms, 0.0), kLatestDeadlineMs);
    const auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(due_ms));
    const double remaining_ms = std::chrono::duration<double, std::milli>(deadline - Clock::now()).count();
    const bool droppable = sla_ms > 0 && remaining_ms > v.run_ms();
    auto run = v.run(std::move(input), batch.n, deadline, droppable);
    if (!run) {
      if (run.status().code() == StatusCode::kUnavailable) metrics_.shed(v.name);
      if (run.status().code() == StatusCode::kUnavailable || run.status().code() == StatusCode::kDeadlineExceeded) {
        fail(Status(run.status().code(), "variant '" + v.name + "': " + run.status().message()));
      }
      fail(run.status());
    }
    v.record(run->infer_ms);
    ++v.requests;
    const double queue_ms = run->queue_ms;
    const double infer_ms = run->infer_ms;

    InferResponse response;
    response.model_name = target.model;
    response.model_version = v.name;
    response.id = request.id;
    Tensor out;
    out.name = "logits";
    out.datatype = "FP32";
    out.shape = {batch.n, v.card.classes};
    out.floats = std::move(run->logits);
    const int classification = request.outputs.empty() ? 0 : request.outputs.front().classification;
    if (classification > 0) out = classification_tensor(out, v.card, classification);
    response.outputs.push_back(std::move(out));
    const VariantProfile& predicted = profiles[selection.variant];
    response.parameters = {{"variant", v.name},
                           {"task", v.task},
                           {"policy", pool.size() > 1 && sla_ms > 0 ? policy->name() : std::string("pinned")},
                           {"sla_ms", sla_ms},
                           {"network_ms", network_ms},
                           {"network_from", client_transfer ? "transfer_ms" : "receive time"},
                           {"budget_ms", sla_ms > 0 ? sla_ms - network_ms : 0.0},
                           {"predicted_ms", predicted.mean_ms},
                           {"predicted_std_ms", predicted.std_ms},
                           {"fits_budget", selection.fits_budget},
                           {"queue_ms", queue_ms},
                           {"infer_ms", infer_ms},
                           {"batch_items", run->batch_items},
                           {"server_ms", ms_since(start)}};
    return response;
  });
}

Expected<nlohmann::json> InferenceCore::metadata(const std::string& model, const std::string& version) const {
  const auto r = registry_.snapshot();
  std::vector<std::shared_ptr<Variant>> variants;
  if (auto t = r->tasks.find(model); t != r->tasks.end()) variants = t->second;
  else if (auto v = r->variants.find(model); v != r->variants.end()) variants = {v->second};
  else return not_found("no model '" + model + "'; GET /v2/repository/index lists them");
  nlohmann::json versions = nlohmann::json::array(), inputs = nlohmann::json::array();
  std::set<std::vector<std::int64_t>> shapes;
  bool has_version = version.empty();
  for (const auto& v : variants) {
    versions.push_back(v->name);
    has_version = has_version || v->name == version;
    auto shape = v->item_shape();
    shape.insert(shape.begin(), -1);
    if (shapes.insert(shape).second) inputs.push_back({{"name", "input"}, {"datatype", "FP32"}, {"shape", shape}});
  }
  if (!has_version) return not_found("model '" + model + "' has no version '" + version + "'");
  inputs.push_back({{"name", "image"}, {"datatype", "BYTES"}, {"shape", {-1}}});
  const auto& card = variants.front()->card;
  return nlohmann::json{{"name", model},
                        {"versions", versions},
                        {"platform", "edgefleet_" + model_format_name(card.format)},
                        {"inputs", inputs},
                        {"outputs", {{{"name", "logits"}, {"datatype", "FP32"}, {"shape", {-1, card.classes}}}}}};
}

bool InferenceCore::ready(const std::string& model, const std::string& version) const {
  const auto r = registry_.snapshot();
  bool ready = r->tasks.count(model) || r->variants.count(model);
  if (ready && !version.empty()) ready = r->variants.count(version) && r->variants.at(version)->task == model;
  return ready;
}

}  // namespace edgefleet
