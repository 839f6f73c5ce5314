#include "edgefleet/inference_client.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include "edgefleet/classifier.h"
#include "edgefleet/decode.h"
#include "edgefleet/device_profile.h"
#include "edgefleet/kserve.h"
#include "edgefleet/preprocess.h"
#include "edgefleet/simulator.h"
#include "serve/network_estimate.h"

namespace edgefleet {
namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); }

int argmax(const std::vector<float>& v) { return static_cast<int>(std::max_element(v.begin(), v.end()) - v.begin()); }

void sleep_ms(double ms) {
  if (ms > 0) std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(ms));
}

// What one race's two contestants report back.
struct RaceState {
  std::mutex mutex;
  std::condition_variable cv;
  bool remote_done = false;
  bool local_done = false;
  std::optional<RaceAnswer> remote;  // set when the remote answer arrived
  std::string remote_error;
  std::optional<RaceAnswer> local;
  std::string local_error;
};

Expected<std::unique_ptr<NetworkModel>> network_from(const std::string& spec, NetworkSample sample) {
  if (spec.rfind("device:", 0) != 0) return parse_network_model(spec, sample);
  const std::string name = spec.substr(7);
  auto device = find_device("builtin", name);
  if (!device) return Status(device.status().code(), "--network " + spec + ": " + device.status().message());
  if (!device->network.trace.empty()) {
    // The trace file is named relative to the profile.
    return parse_network_model("trace:" + (std::filesystem::path(device->path).parent_path() / device->network.trace).string());
  }
  return parse_network_model("normal:" + std::to_string(device->network.rtt_ms_mean) + ":" + std::to_string(device->network.rtt_ms_std));
}

}  // namespace

struct InferenceClient::Impl {
  ClientOptions options;
  std::string host_port;  // "http://host:port"
  std::unique_ptr<NetworkModel> network;

  std::mutex local_mutex;  // the local model runs one image at a time
  std::unique_ptr<Classifier> local;

  mutable std::mutex state_mutex;
  NetworkEstimate transfer{0.3};
  double fastest_server_ms = 0.0;  // the least server time seen (0 until an answer came)
  Rng rng;
  int outstanding = 0;  // remote calls still running
  std::condition_variable outstanding_cv;

  double draw_network_ms() {
    if (!network) return 0.0;
    std::lock_guard<std::mutex> lock(state_mutex);
    return network->sample_ms(rng);
  }

  void record_transfer(double ms, double server_ms) {
    std::lock_guard<std::mutex> lock(state_mutex);
    fastest_server_ms = transfer.measured() ? std::min(fastest_server_ms, server_ms) : server_ms;
    transfer.add(ms);
  }

  // One remote call, emulated network included. Runs on its own thread.
  void call_remote(const std::string& body, std::size_t json_length, double network_ms, Clock::time_point start,
                   const std::shared_ptr<RaceState>& state) {
    std::optional<RaceAnswer> answer;
    std::string error;
    try {
      sleep_ms(network_ms / 2);  // uplink
      httplib::Client http(host_port);
      http.set_tcp_nodelay(true);
      const auto timeout = std::chrono::duration<double, std::milli>(options.timeout_ms);
      http.set_connection_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
      http.set_read_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
      httplib::Headers headers{{kInferenceHeaderContentLength, std::to_string(json_length)}};
      if (!options.token.empty()) headers.emplace("Authorization", "Bearer " + options.token);
      auto res = http.Post(("/v2/models/" + options.model + "/infer").c_str(), headers, body, "application/octet-stream");
      if (!res) {
        error = "no answer from " + host_port + ": " + httplib::to_string(res.error());
      } else if (res->status != 200) {
        auto j = nlohmann::json::parse(res->body, nullptr, false);
        error = "HTTP " + std::to_string(res->status) + ": " +
                (j.is_object() && j.contains("error") && j["error"].is_string() ? j["error"].get<std::string>() : res->body.substr(0, 200));
      } else {
        auto length = parse_header_length(res->get_header_value(kInferenceHeaderContentLength), res->body.size());
        auto parsed = length ? parse_infer_response(res->body, length.value()) : Expected<InferResponse>(length.status());
        if (!parsed) {
          error = parsed.status().message();
        } else if (parsed->outputs.empty() || parsed->outputs.front().floats.empty()) {
          error = "the server's answer holds no logits";
        } else {
          sleep_ms(network_ms / 2);  // downlink
          const auto arrived = Clock::now();
          RaceAnswer a;
          a.source = "remote";
          a.logits = parsed->outputs.front().floats;
          a.top1 = argmax(a.logits);
          a.model = parsed->model_version;
          a.remote_parameters = parsed->parameters;
          a.remote_ms = ms_between(start, arrived);
          const double server_ms = a.remote_parameters.value("server_ms", 0.0);
          record_transfer(std::max(0.0, a.remote_ms - server_ms), server_ms);
          answer = std::move(a);
        }
      }
    } catch (const std::exception& e) {
      error = first_meaningful_line(e.what());
    }
    {
      std::lock_guard<std::mutex> lock(state->mutex);
      state->remote = std::move(answer);
      state->remote_error = error;
      state->remote_done = true;
    }
    state->cv.notify_all();
  }

  void run_local(const std::vector<std::uint8_t>& bytes, Clock::time_point start, const std::shared_ptr<RaceState>& state) {
    std::optional<RaceAnswer> answer;
    std::string error;
    auto image = decode_image(bytes, "the image");
    if (!image) {
      error = image.status().message();
    } else {
      std::lock_guard<std::mutex> lock(local_mutex);
      auto input = preprocess(image.value(), local->card().input);
      auto logits = input ? local->infer(input->data(), 1) : Expected<std::vector<float>>(input.status());
      if (!logits) {
        error = logits.status().message();
      } else {
        RaceAnswer a;
        a.source = "local";
        a.logits = std::move(logits).value();
        a.top1 = argmax(a.logits);
        a.model = local->card().name;
        a.local_ms = ms_between(start, Clock::now());
        answer = std::move(a);
      }
    }
    {
      std::lock_guard<std::mutex> lock(state->mutex);
      state->local = std::move(answer);
      state->local_error = error;
      state->local_done = true;
    }
    state->cv.notify_all();
  }
};

InferenceClient::InferenceClient(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

InferenceClient::~InferenceClient() {
  // Remote calls that lost their race still run; wait for them so none outlives the client.
  std::unique_lock<std::mutex> lock(impl_->state_mutex);
  impl_->outstanding_cv.wait(lock, [&] { return impl_->outstanding == 0; });
}

Expected<std::unique_ptr<InferenceClient>> InferenceClient::create(const ClientOptions& options) {
  auto impl = std::make_shared<Impl>();
  impl->options = options;
  impl->transfer = NetworkEstimate(options.transfer_alpha);
  if (options.model.empty()) return invalid_argument("the client needs a model (a task or variant name)");
  if (options.url.rfind("http://", 0) != 0) return invalid_argument("server URL '" + options.url + "' must start with http://");
  std::string rest = options.url.substr(7);
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.empty() || rest.find('/') != std::string::npos) {
    return invalid_argument("server URL '" + options.url + "' must be http://HOST[:PORT] with no path");
  }
  impl->host_port = "http://" + rest;
  if (!(options.transfer_alpha > 0 && options.transfer_alpha <= 1)) return invalid_argument("transfer_alpha must be in (0, 1]");
  if (!(options.duplicate_above >= 0 && options.duplicate_above < 1)) {
    return invalid_argument("duplicate_above must be a probability in [0, 1)");
  }
  if (!(options.timeout_ms > 0)) return invalid_argument("timeout_ms must be positive");
  if (!options.network.empty()) {
    auto network = network_from(options.network, options.network_sample);
    if (!network) return network.status();
    impl->network = std::move(network).value();
  }
  impl->rng.seed(options.seed);
  if (!options.local_model.empty()) {
    auto card = resolve_model(options.local_model);
    if (!card) return card.status();
    LoadOptions load;
    load.threads = options.local_threads;
    auto model = load_classifier(card.value(), load);
    if (!model) return model.status();
    impl->local = std::move(model).value();
  }
  return std::unique_ptr<InferenceClient>(new InferenceClient(std::move(impl)));
}

double InferenceClient::transfer_estimate_ms() const {
  std::lock_guard<std::mutex> lock(impl_->state_mutex);
  return impl_->transfer.mean_ms();
}

Expected<RaceAnswer> InferenceClient::classify(const std::vector<std::uint8_t>& encoded_image, double sla_ms) {
  if (!(sla_ms > 0)) return invalid_argument("the SLA must be a positive number of milliseconds");
  if (encoded_image.empty()) return invalid_argument("the image is empty");
  Impl& c = *impl_;
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(sla_ms));

  InferRequest request;
  request.parameters["sla_ms"] = sla_ms;
  if (c.options.send_transfer_estimate) {
    std::lock_guard<std::mutex> lock(c.state_mutex);
    if (c.transfer.measured()) request.parameters["transfer_ms"] = c.transfer.mean_ms();
  }
  if (!c.options.policy.empty()) request.parameters["policy"] = c.options.policy;
  Tensor image;
  image.name = "image";
  image.datatype = "BYTES";
  image.shape = {1};
  image.bytes.emplace_back(encoded_image.begin(), encoded_image.end());
  request.inputs.push_back(std::move(image));
  request.binary_output = true;
  EncodedMessage message = encode_infer_request(request, /*binary_inputs=*/true);

  bool race = static_cast<bool>(c.local);
  if (race) {
    std::lock_guard<std::mutex> lock(c.state_mutex);
    race = should_duplicate(c.transfer, sla_ms, c.fastest_server_ms, c.options.duplicate_above);
  }
  auto state = std::make_shared<RaceState>();
  const double network_ms = c.draw_network_ms();
  {
    std::lock_guard<std::mutex> lock(c.state_mutex);
    ++c.outstanding;
  }
  std::thread([impl = impl_, body = std::move(message.body), length = message.json_length, network_ms, start, state] {
    impl->call_remote(body, length, network_ms, start, state);
    {
      std::lock_guard<std::mutex> lock(impl->state_mutex);
      --impl->outstanding;
    }
    impl->outstanding_cv.notify_all();
  }).detach();
  // The local model runs on this thread, while the remote call is in flight.
  bool ran_local = race;
  if (race) {
    c.run_local(encoded_image, start, state);
  } else {
    std::unique_lock<std::mutex> lock(state->mutex);
    state->local_error = c.local ? "not run (a remote miss looked unlikely)" : "no local model";
    if (c.local) {
      // Not raced: the remote answer is taken whenever it comes; the local model runs only if
      // the call fails.
      state->cv.wait(lock, [&] { return state->remote_done; });
      if (!state->remote) {
        lock.unlock();
        ran_local = true;
        c.run_local(encoded_image, start, state);
        lock.lock();
      }
    }
    state->local_done = true;
  }

  std::unique_lock<std::mutex> lock(state->mutex);
  // The remote answer wins if it arrives by the deadline (or when there is nothing else).
  state->cv.wait_until(lock, deadline, [&] { return state->remote_done; });
  if (!state->remote_done && !state->local) state->cv.wait(lock, [&] { return state->remote_done; });
  RaceAnswer answer;
  if (state->remote && (state->remote->remote_ms <= sla_ms || !state->local)) {
    answer = *state->remote;
  } else if (state->local) {
    answer = *state->local;
    if (state->remote) answer.remote_ms = state->remote->remote_ms;
    answer.remote_error = state->remote_done ? state->remote_error : "no answer within the SLA";
  } else {
    return Status(StatusCode::kIoError, "remote: " + state->remote_error + "; local: " + state->local_error);
  }
  if (state->local) answer.local_ms = state->local->local_ms;
  answer.local_ran = ran_local;
  answer.network_ms = network_ms;
  answer.latency_ms = answer.source == "remote" ? answer.remote_ms : answer.local_ms;
  answer.met_sla = answer.latency_ms <= sla_ms;
  return answer;
}

}  // namespace edgefleet
