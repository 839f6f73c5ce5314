// Internal: a cpp-httplib server bound to host:port and listening on its own thread, for the
// small services (peer coordinator, port server).
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "edgefleet/status.h"

namespace edgefleet {

class HttpListener {
 public:
  HttpListener() = default;
  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;
  ~HttpListener() { stop(); }

  // Binds (port 0 = any free port) and returns once `http` accepts connections; `what` names
  // the service in errors.
  Status start(httplib::Server& http, const std::string& host, int port, const std::string& what) {
    port_ = port == 0 ? http.bind_to_any_port(host) : (http.bind_to_port(host, port) ? port : -1);
    if (port_ <= 0) return io_error(what + " could not bind " + host + (port ? ":" + std::to_string(port) : ""));
    http_ = &http;
    listener_ = std::thread([this] {
      http_->listen_after_bind();
      returned_ = true;
    });
    while (!http.is_running() && !returned_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (!http.is_running()) {
      stop();
      return io_error(what + " on " + host + ":" + std::to_string(port_) + " stopped at once");
    }
    return Status::ok();
  }

  int port() const { return port_; }

  void stop() {
    if (http_) http_->stop();
    if (listener_.joinable()) listener_.join();
  }

 private:
  httplib::Server* http_ = nullptr;
  std::thread listener_;
  std::atomic<bool> returned_{false};
  int port_ = 0;
};

}  // namespace edgefleet
