// `edgefleet port --serve`: porting as a service, the background path of papers/mistify.md
// §6. After the batch port of a config, new goals arrive over HTTP — one per request
// (streaming mode) or several at once (batch mode) — and each is adapted from the checkpoint
// of its nearest predecessor in the goal tree, fine-tuned, and written like the others.
//
//   POST /v1/goals          a goal object, or {"goals": [..]}: 200 {"goals": [results]} once
//                           adapted; 400 for a malformed goal (the field named), 409 when
//                           a name is taken by a different goal
//   GET  /v1/goals          port.json of the folder
//   GET  /v1/models/{goal}  the goal's TorchScript file
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "edgefleet/port.h"
#include "edgefleet/status.h"

namespace edgefleet {

struct PortServerOptions {
  std::string out_dir;
  std::string fleet_dir;         // resolves goals' device names
  std::string host = "127.0.0.1";
  int port = 0;                  // 0 = any free port
  std::function<void(const PortProgress&)> on_progress;
};

class PortServer {
 public:
  // Runs (or resumes) the batch port of `config` first, then listens.
  static Expected<std::unique_ptr<PortServer>> start(const PortConfig& config, const PortServerOptions& options);
  ~PortServer();
  PortServer(const PortServer&) = delete;
  PortServer& operator=(const PortServer&) = delete;
  std::string url() const;

 private:
  struct Impl;
  explicit PortServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgefleet
