// Internal: one hardened cpp-httplib server for every HTTP service of edgefleet (the
// inference server, the port server, the peer coordinator). What it guarantees, whatever
// bytes a client sends:
// - no request ends the process: every handler runs inside a catch-all, and every JSON body
//   is written with invalid UTF-8 replaced (request text reaches error messages);
// - errors are one shape everywhere: `{"error": "one line"}` with the status of the Status
//   (status_of), httplib's own refusals included;
// - bodies are bounded while they are read: a declared Content-Length over the limit is
//   answered 413 before a byte of the body is read, a chunked body 413 as soon as it passes
//   the limit, and a POST/PUT without a body (no length, not chunked) is an empty body;
// - slow clients cannot starve the others: per-read timeouts are short, and connections are
//   served by a pool that grows to `max_connections` threads (idle ones exit), so a health
//   check gets a thread while a slowloris holds hundreds.
#pragma once

#include <httplib.h>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "edgefleet/status.h"

namespace edgefleet::http {

struct Limits {
  std::size_t max_body_bytes = 32u << 20;
  int read_timeout_seconds = 5;   // silence allowed while a request's headers or body arrive
  int write_timeout_seconds = 30;  // silence allowed while the client reads an answer
  int keep_alive_seconds = 5;      // an idle kept-alive connection is closed after this
  int max_connections = 256;       // served at once (one thread each); more wait for a thread
  int min_threads = 4;             // kept when idle
};

// The JSON text of `j`; invalid UTF-8 in strings is replaced by U+FFFD instead of throwing.
std::string json_text(const nlohmann::json& j);
// `text` with every byte that is not part of valid UTF-8 replaced by U+FFFD.
std::string valid_utf8(std::string_view text);

// The HTTP status a Status maps to: 400 invalid/corrupt/unsupported, 404 not found, 500 else.
int status_of(const Status& status);

void send_json(httplib::Response& res, int status, const nlohmann::json& body);
void send_error(httplib::Response& res, int status, const std::string& message);
void send_status(httplib::Response& res, const Status& status);  // an error Status, as send_error

// A handler of a request with a body: the body arrives whole, already checked against the
// limit. Handlers may throw Error (answered with its status) or anything else (500).
using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;
using BodyHandler = std::function<void(const httplib::Request&, const std::string& body, httplib::Response&)>;
// Runs before routing, once the headers are read (authentication, timing); return true when
// it answered the request itself.
using Guard = std::function<bool(const httplib::Request&, httplib::Response&)>;

class Service {
 public:
  Service(std::string what, Limits limits);  // `what` names the service in errors
  ~Service();                                // stops
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  void get(const std::string& pattern, Handler handler);
  void post(const std::string& pattern, BodyHandler handler);
  void put(const std::string& pattern, BodyHandler handler);
  void set_guard(Guard guard);
  // Called with the status of every error answer produced outside the handlers (404 no
  // route, 413, 400 malformed HTTP, 401 from the guard is the guard's own business).
  void on_refusal(std::function<void(int status)> observer);

  // Binds (port 0 = any free port) and returns once connections are accepted.
  Status start(const std::string& host, int port);
  int port() const;
  // Stops accepting; requests in flight finish. Idempotent.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgefleet::http
