// The on-device client of papers/mdinference.md §IV-C: it sends an image to the inference
// server with its SLA and, at the same time, runs an on-device model; it returns the remote
// answer if that arrives before the deadline, else the local one, and says which. It keeps a
// running estimate of its network round trip (measured time minus the server's own time) and
// sends it as `transfer_ms`, so the server can budget for the network. An emulated network
// (a delay drawn per request, half before sending and half after the answer) makes the
// paper's experiments runnable on loopback.
//
//   ClientOptions options;
//   options.url = "http://127.0.0.1:8000";
//   options.model = "fashion-mnist";
//   options.local_model = "cnn_tiny";
//   auto client = InferenceClient::create(options).value();
//   RaceAnswer a = client->classify(jpeg_bytes, 250.0).value();   // a.source: remote | local
//
// classify() may be called from several threads at once; the local model runs one image at a
// time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "edgefleet/simulator.h"
#include "edgefleet/status.h"

namespace edgefleet {

struct ClientOptions {
  std::string url = "http://127.0.0.1:8000";
  std::string model;        // task (the server picks the variant) or variant name
  std::string token;        // bearer token, when the server asks for one
  std::string local_model;  // card, model file or zoo name of the on-device model; "" = remote only
  // Emulated network round trip: a network model spec ("normal:MEAN:STD", "cv:MEAN:CV",
  // "trace:FILE"), "device:NAME" (a fleet profile's network) or "" (none).
  std::string network;
  // What a drawn time of `network` is (a fleet profile's network is always a round trip).
  NetworkSample network_sample = NetworkSample::kRoundTrip;
  std::string policy;             // asks the server for this selection policy; "" = its default
  bool send_transfer_estimate = true;
  double transfer_alpha = 0.3;    // weight of the newest measurement in the running estimate
  // > 0: duplicate only when it pays (beyond the paper): run the local model beside the remote
  // call only when, from the running network estimate (mean and spread) and the fastest
  // server time seen, a remote miss is likelier than this; otherwise send the remote request
  // alone and take its answer, late or not (the local model runs after all if the call
  // fails). 0 = race on every request (the paper). The simulator's rule (--duplicate-above).
  double duplicate_above = 0.0;
  double timeout_ms = 30000.0;    // a remote call gives up after this long
  std::uint64_t seed = 1;         // of the emulated network's draws
  int local_threads = 1;
};

struct RaceAnswer {
  std::string source;  // "remote" or "local"
  int top1 = -1;
  std::vector<float> logits;
  std::string model;          // the remote variant, or the local model's name
  double latency_ms = 0.0;    // when the answer used was available, from the call
  bool met_sla = false;       // latency_ms <= sla
  double remote_ms = -1.0;    // when the remote answer arrived (-1: not by the time we returned)
  double local_ms = -1.0;     // when the local answer was ready (-1: not run or not ready)
  bool local_ran = false;     // the on-device model ran for this request (its energy cost)
  double network_ms = 0.0;    // emulated delay added to this request
  std::string remote_error;   // why the remote answer is missing, when it is
  nlohmann::json remote_parameters;  // the server's explanation (variant, budget, predicted_ms, ...)
};

class InferenceClient {
 public:
  // Loads the local model and resolves the network emulation; fails on a bad URL, a model
  // that does not load, an unknown device or a malformed network spec.
  static Expected<std::unique_ptr<InferenceClient>> create(const ClientOptions& options);
  ~InferenceClient();

  // Races the server against the local model for one encoded image. Fails only when neither
  // produces an answer (no local model and the remote call failed, or the image is unreadable).
  Expected<RaceAnswer> classify(const std::vector<std::uint8_t>& encoded_image, double sla_ms);

  // The running estimate of the network round trip sent as transfer_ms (0 until measured).
  double transfer_estimate_ms() const;

 private:
  struct Impl;
  explicit InferenceClient(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace edgefleet
