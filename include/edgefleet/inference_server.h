// The SLA-aware inference server (papers/mdinference.md §IV): KServe v2 / Open Inference
// Protocol over HTTP (and gRPC, with grpc_port), serving every task of a model repository (edgefleet/model_repository.h).
//
// Inferring on a task name lets the server pick the variant per request with a selection
// policy (edgefleet/selection.h), from the request parameters `sla_ms` (the end-to-end
// deadline) and `transfer_ms` (the client's estimate of its network round trip; when absent,
// twice the time the request body took to arrive). Inferring on a variant name, or on
// /v2/models/TASK/versions/VARIANT, pins that variant. Latency profiles start from warm-up
// runs at load and then follow real executions; a variant's predicted latency adds the wait
// its current queue predicts, so selection adapts under load. With max_batch > 1, requests of
// one variant are batched, earliest deadline first (deadline = arrival + sla_ms - network
// time); a request still queued at its deadline is answered 504 without running. Variants can be loaded and unloaded while serving; requests in flight finish
// on the variant they started on.
//
//   ServerOptions options;
//   options.repository = "repo";
//   auto server = InferenceServer::create(options).value();
//   server->start().value();      // listening on server->port()
//   ...
//   server->stop();               // graceful: finishes requests in flight
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "edgefleet/status.h"

namespace edgefleet {

struct ServerOptions {
  std::string repository;
  std::string host = "127.0.0.1";  // loopback unless told otherwise
  int port = 8000;                 // 0 = any free port
  int grpc_port = -1;              // KServe v2 gRPC beside HTTP: -1 = off, 0 = any free port
  std::string token;               // non-empty: every endpoint but health needs "Authorization: Bearer TOKEN"
  std::string policy = "mdinference";  // the default selection policy; a request may name another
  double default_sla_ms = 0.0;     // for requests without sla_ms; 0 = no deadline (most accurate variant)
  int http_threads = 256;          // connections served at once, a thread each (threads start on demand, idle ones exit)
  int read_timeout_seconds = 5;    // silence allowed while a request arrives (slow clients are cut off)
  int instances_per_variant = 2;   // model copies per variant = inferences of it that run at once
  int engine_threads = 1;          // intra-op threads of each copy
  int max_queue = 64;              // requests waiting for a variant's copy beyond this get 503
  int max_batch = 1;               // dynamic batching: items per model run (1 = off)
  double max_queue_delay_ms = 0.0; // how long a request may wait for its batch to fill
  std::size_t max_body_bytes = 32u << 20;  // larger bodies get 413, chunked ones as soon as they pass it
  std::size_t max_image_pixels = 50'000'000;  // larger pictures are refused from their header (400)
  std::size_t decode_budget_bytes = 1u << 30;  // memory for pictures being decoded at once; more wait
  bool require_sha256 = false;     // refuse variants whose card has no sha256 (else they load with a warning)
  int warmup_runs = 12;            // inferences at load that seed the latency profile
  double poll_seconds = 0.0;       // > 0: rescan the repository this often and load/unload
  std::uint64_t seed = 1;          // of the selection policies' randomness
  std::function<void(const std::string&)> log;  // one line per event; null = silent
};

struct VariantStatus {
  std::string task;
  std::string variant;
  double accuracy = 0.0;
  double mean_ms = 0.0;  // the online profile: execution, plus the current queue's predicted wait
  double std_ms = 0.0;
  std::int64_t requests = 0;
};

class InferenceServer {
 public:
  // Reads and loads the repository; fails on an invalid repository or a model that does not
  // load (the message names the variant).
  static Expected<std::unique_ptr<InferenceServer>> create(ServerOptions options);
  ~InferenceServer();

  // Binds and serves on a background thread. Fails with io_error when the address is taken.
  Status start();
  int port() const;
  int grpc_port() const;  // 0 when gRPC is off
  // Stops accepting, lets requests in flight finish, joins the threads. Idempotent.
  void stop();
  // Blocks until stop() is called (from another thread or a signal watcher).
  void wait();

  // Loads a variant (or every variant of a task) from the repository, replacing a loaded one
  // of the same name; unloads one (or a whole task). Both are what the repository endpoints
  // and the poller call.
  Status load(const std::string& name);
  Status unload(const std::string& name);
  // Rescans the repository: loads new or changed variants, unloads removed ones.
  Status sync_repository();

  std::vector<VariantStatus> variants() const;

 private:
  struct Impl;
  explicit InferenceServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgefleet
