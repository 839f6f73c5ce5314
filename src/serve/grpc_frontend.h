// Internal: the KServe v2 gRPC frontend (GRPCInferenceService of
// serve/proto/grpc_predict_v2.proto) beside the HTTP one, over the same transport-free core.
// It only converts messages, checks the token and maps a Status to a gRPC code:
// invalid_argument/corrupt/unsupported -> INVALID_ARGUMENT, not_found -> NOT_FOUND,
// unavailable -> UNAVAILABLE, deadline_exceeded -> DEADLINE_EXCEEDED, a wrong or missing
// token -> UNAUTHENTICATED, anything else -> INTERNAL.
//
// Differences from HTTP, by the protocol: outputs always travel as raw_output_contents (as
// Triton sends them), and gRPC gives no body receive time, so a request without
// parameters.transfer_ms counts no network time against its sla_ms.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "edgefleet/status.h"

namespace edgefleet {

class InferenceCore;
class ServerMetrics;

struct GrpcFrontendOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0 = any free port
  std::string token;  // non-empty: every call but ServerLive/ServerReady needs "authorization: Bearer TOKEN"
  std::size_t max_message_bytes = 32u << 20;
  int max_threads = 256;  // calls served at once
};

class GrpcFrontend {
 public:
  // Binds and serves on gRPC's own threads; io_error when the address is taken.
  // `ready` answers ServerReady (the HTTP frontend's /v2/health/ready rule).
  static Expected<std::unique_ptr<GrpcFrontend>> start(const GrpcFrontendOptions& options, InferenceCore& core,
                                                       ServerMetrics& metrics, std::function<bool()> ready);
  ~GrpcFrontend();  // stop()
  int port() const;
  // Stops accepting and lets calls in flight finish. Idempotent.
  void stop();

 private:
  struct Impl;
  explicit GrpcFrontend(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgefleet
