// The coordinator of peer tuning (papers/mistify.md §5.2): an HTTP server on loopback that
// devices send their models and hints to, and fetch their peers' models from. It keeps
// models only (each upload must load as a TorchScript module, or it is refused with 400)
// and indexes hints with LSH to choose each device's peers.
//
// With a token, every request needs "Authorization: Bearer TOKEN". Registering answers the
// device's write key; sending models and results needs it ("X-Device-Key"), so a device can
// only write its own, and registering a known name again needs it too. Models no device can
// still ask for are dropped as rounds advance (bytes_held()).
//
//   POST /v1/devices/{device}                       {"hint": [..]}: register; answers {"key": ..}
//   PUT  /v1/models/{scenario}/{device}/{round}     body: TorchScript; ?final=1 when done
//   GET  /v1/peers/{scenario}/{device}/{round}?k=K  200 {"peers": [..]} once the K nearest
//                                                   have a model for that round, else 202
//   GET  /v1/models/{scenario}/{device}/{round}     the device's latest model up to round
//   POST /v1/results/{scenario}/{device}            JSON result of a finished scenario
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "edgefleet/lsh_index.h"
#include "edgefleet/status.h"

namespace edgefleet {

struct PeerCoordinatorOptions {
  std::string host = "127.0.0.1";
  int port = 0;                 // 0 = any free port
  std::string token;            // non-empty: every request needs "Authorization: Bearer TOKEN"
  int hint_dimensions = 0;
  LshOptions lsh;
  bool record_traffic = false;  // keep every request (tests audit what left the devices)
  // How many devices will take part (0 = not known). A scenario every registered device has
  // reported on drops all its models only once this many are registered; until then (and
  // always when not known) each device's latest and its round-0 model stay, for a device yet
  // to register.
  int expected_devices = 0;
};

struct RecordedRequest {
  std::string method;
  std::string path;  // with the query string
  std::string body;
};

class PeerCoordinator {
 public:
  static Expected<std::unique_ptr<PeerCoordinator>> start(const PeerCoordinatorOptions& options);
  ~PeerCoordinator();  // stops the server
  PeerCoordinator(const PeerCoordinator&) = delete;
  PeerCoordinator& operator=(const PeerCoordinator&) = delete;

  std::string url() const;  // http://host:port
  std::vector<RecordedRequest> traffic() const;
  std::vector<nlohmann::json> results() const;  // as posted, in arrival order
  std::uint64_t bytes_uploaded() const;    // model bodies received
  std::uint64_t bytes_downloaded() const;  // model bodies sent
  std::uint64_t bytes_held() const;        // model bodies kept now

 private:
  struct Impl;
  explicit PeerCoordinator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgefleet
