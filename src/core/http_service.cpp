#include "core/http_service.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

namespace edgefleet::http {
namespace {

// A connection pool that grows a thread per waiting connection up to `max_threads` and lets
// threads idle for a while exit down to `min_threads`. httplib's own pool has a fixed size:
// as many slow clients as threads hold every one of them, and the next request waits.
class ElasticPool : public httplib::TaskQueue {
 public:
  ElasticPool(int min_threads, int max_threads) : min_(std::max(1, min_threads)), max_(std::max(min_, max_threads)) {}
  ~ElasticPool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    std::lock_guard<std::mutex> lock(mutex_);
    reap();
    jobs_.push_back(std::move(fn));
    if (static_cast<int>(jobs_.size()) > idle_ && static_cast<int>(workers_.size()) < max_) spawn();
    cv_.notify_one();
  }

  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (shutting_down_) return;
      shutting_down_ = true;
    }
    cv_.notify_all();
    // Workers finish the queued connections first, as httplib's pool does.
    std::list<std::thread> all;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      all.splice(all.end(), workers_);
      all.splice(all.end(), finished_);
    }
    for (auto& t : all) {
      if (t.joinable()) t.join();
    }
  }

 private:
  void spawn() {
    workers_.emplace_back();
    auto self = std::prev(workers_.end());
    *self = std::thread([this, self] { work(self); });
  }

  void work(std::list<std::thread>::iterator self) {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      ++idle_;
      const bool woke = cv_.wait_for(lock, std::chrono::seconds(30), [&] { return shutting_down_ || !jobs_.empty(); });
      --idle_;
      if (jobs_.empty()) {
        if (shutting_down_) return;
        if (!woke && static_cast<int>(workers_.size()) > min_) {
          finished_.splice(finished_.end(), workers_, self);  // joined by the next enqueue or shutdown
          return;
        }
        continue;
      }
      auto job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      job();
      lock.lock();
    }
  }

  void reap() {
    for (auto& t : finished_) {
      if (t.joinable()) t.join();
    }
    finished_.clear();
  }

  const int min_, max_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::list<std::thread> workers_, finished_;
  int idle_ = 0;
  bool shutting_down_ = false;
};

bool has_body_method(const httplib::Request& req) { return req.method == "POST" || req.method == "PUT" || req.method == "PATCH"; }

bool is_chunked(const httplib::Request& req) {
  std::string te = req.get_header_value("Transfer-Encoding");
  std::transform(te.begin(), te.end(), te.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return te.find("chunked") != std::string::npos;
}

// Content-Length as a byte count (digits only; saturated at SIZE_MAX); nullopt when it is
// anything else.
std::optional<std::size_t> content_length(const std::string& text) {
  if (text.empty()) return std::nullopt;
  std::size_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<std::size_t>(c - '0');
    n = n > (SIZE_MAX - digit) / 10 ? SIZE_MAX : n * 10 + digit;
  }
  return n;
}

// The peer address of a connected socket as httplib writes it ("127.0.0.1", 54321).
bool peer_of(int fd, std::string& host, int& port) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return false;
  char text[INET6_ADDRSTRLEN] = {};
  if (address.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&address);
    inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text);
    port = ntohs(v4->sin_port);
  } else if (address.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&address);
    inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text);
    port = ntohs(v6->sin6_port);
  } else {
    return false;
  }
  host = text;
  return true;
}

int local_port_of(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return -1;
  if (address.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&address)->sin_port);
  if (address.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&address)->sin6_port);
  return -1;
}

// httplib 0.11 keeps a connection open whatever the answer says, and would parse the unread
// rest of a refused body as the next request (its request-line reader grows without bound
// until a newline). This finds the request's socket among the process's descriptors (by its
// peer address and this server's port; refusals are rare) and shuts its reading side, so the
// connection ends once the answer is written.
void stop_reading(const std::string& remote_addr, int remote_port, int server_port) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const int fd = std::stoi(name);
    std::string host;
    int port = 0;
    if (!peer_of(fd, host, port) || port != remote_port || host != remote_addr) continue;
    if (local_port_of(fd) != server_port) continue;
    shutdown(fd, SHUT_RD);
    return;
  }
}

// Ends the connection once the answer in `res` is written: the request's body was not (fully)
// read. The answer goes out through a content provider because the provider's releaser runs
// after it is sent, and only then may the reading side be shut (httplib writes nothing to a
// socket it can no longer read).
void close_after_answer(const httplib::Request& req, httplib::Response& res, int server_port) {
  res.set_header("Connection", "close");
  auto body = std::make_shared<const std::string>(std::move(res.body));
  res.body.clear();
  std::string type = res.get_header_value("Content-Type");
  res.headers.erase("Content-Type");
  res.set_content_provider(
      body->size(), type.empty() ? "application/json" : type,
      [body](std::size_t offset, std::size_t length, httplib::DataSink& sink) { return sink.write(body->data() + offset, length); },
      [addr = req.remote_addr, port = req.remote_port, server_port](bool) { stop_reading(addr, port, server_port); });
}

void refuse_and_close(const httplib::Request& req, httplib::Response& res, int server_port, int status, const std::string& message) {
  send_error(res, status, message);
  close_after_answer(req, res, server_port);
}

}  // namespace

std::string json_text(const nlohmann::json& j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

std::string valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    // The length a lead byte announces, and the smallest second byte it allows (no overlong
    // forms, no surrogates, nothing past U+10FFFF).
    std::size_t length = 0;
    unsigned char low = 0x80, high = 0xBF;
    if (c < 0x80) length = 1;
    else if (c >= 0xC2 && c <= 0xDF) length = 2;
    else if (c == 0xE0) length = 3, low = 0xA0;
    else if (c == 0xED) length = 3, high = 0x9F;
    else if (c >= 0xE1 && c <= 0xEF) length = 3;
    else if (c == 0xF0) length = 4, low = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) length = 4;
    else if (c == 0xF4) length = 4, high = 0x8F;
    bool ok = length > 0 && i + length <= text.size();
    for (std::size_t k = 1; ok && k < length; ++k) {
      const auto b = static_cast<unsigned char>(text[i + k]);
      ok = k == 1 ? (b >= low && b <= high) : (b >= 0x80 && b <= 0xBF);
    }
    if (ok) {
      out.append(text.substr(i, length));
      i += length;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

int status_of(const Status& s) {
  switch (s.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kCorrupt:
    case StatusCode::kUnsupported:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

void send_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(json_text(body), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message) { send_json(res, status, {{"error", message}}); }

void send_status(httplib::Response& res, const Status& status) { send_error(res, status_of(status), status.message()); }

struct Service::Impl {
  std::string what;
  Limits limits;
  httplib::Server http;
  Guard guard;
  std::function<void(int)> refusal_observer;
  std::thread listener;
  std::atomic<bool> listener_returned{false};
  int bound_port = 0;
  int listening_socket = -1;  // set by the socket-options hook before httplib binds it
  bool started = false;

  void refused(int status) {
    if (refusal_observer) refusal_observer(status);
  }

  // Runs a handler so that nothing it throws leaves it.
  void guarded(httplib::Response& res, const std::function<void()>& handler) {
    try {
      handler();
    } catch (const Error& e) {
      send_status(res, e.status());
    } catch (const std::exception& e) {
      send_error(res, 500, first_meaningful_line(e.what()));
    } catch (...) {
      send_error(res, 500, "unknown error");
    }
  }

  httplib::Server::HandlerWithContentReader with_body(BodyHandler handler) {
    return [this, handler = std::move(handler)](const httplib::Request& req, httplib::Response& res,
                                                const httplib::ContentReader& reader) {
      guarded(res, [&] {
        std::string body;
        // No length and not chunked: HTTP/1.1 says there is no body (httplib would wait for
        // the connection to close).
        if (is_chunked(req) || req.has_header("Content-Length")) {
          bool over = false;
          const bool read = reader([&](const char* data, std::size_t n) {
            if (n > limits.max_body_bytes - body.size()) {
              over = true;
              return false;
            }
            body.append(data, n);
            return true;
          });
          if (over) {
            refused(413);
            return refuse_and_close(req, res, bound_port, 413, "the request body is larger than the limit of " + std::to_string(limits.max_body_bytes) + " bytes");
          }
          if (!read) {
            refused(400);
            return refuse_and_close(req, res, bound_port, 400, "the request body could not be read (cut short, timed out or malformed chunks)");
          }
        }
        handler(req, body, res);
      });
    };
  }
};

Service::Service(std::string what, Limits limits) : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.what = std::move(what);
  s.limits = limits;
  const int min_threads = limits.min_threads, max_threads = limits.max_connections;
  s.http.new_task_queue = [min_threads, max_threads] { return new ElasticPool(min_threads, max_threads); };
  s.http.set_payload_max_length(limits.max_body_bytes);
  s.http.set_read_timeout(limits.read_timeout_seconds, 0);
  s.http.set_write_timeout(limits.write_timeout_seconds, 0);
  s.http.set_keep_alive_timeout(limits.keep_alive_seconds);
  s.http.set_keep_alive_max_count(1000);
  s.http.set_tcp_nodelay(true);  // small answers: without it Nagle and delayed ACKs add 40 ms
  s.http.set_socket_options([&s](socket_t sock) {
    httplib::default_socket_options(sock);
    s.listening_socket = sock;
  });
  s.http.set_pre_routing_handler([&s](const httplib::Request& req, httplib::Response& res) {
    bool handled = false;
    s.guarded(res, [&] {
      if (has_body_method(req) && req.has_header("Content-Length")) {
        if (is_chunked(req)) {
          handled = true;
          s.refused(400);
          return refuse_and_close(req, res, s.bound_port, 400, "a request may not have both Content-Length and chunked Transfer-Encoding");
        }
        const auto length = content_length(req.get_header_value("Content-Length"));
        if (!length) {
          handled = true;
          s.refused(400);
          return refuse_and_close(req, res, s.bound_port, 400, "Content-Length is not a byte count");
        }
        if (*length > s.limits.max_body_bytes) {
          handled = true;
          s.refused(413);
          return refuse_and_close(req, res, s.bound_port, 413, "the request body (" + std::to_string(*length) + " bytes) is larger than the limit of " +
                                                std::to_string(s.limits.max_body_bytes) + " bytes");
        }
      }
      if (s.guard) handled = s.guard(req, res);
      // A refused request's body stays unread: the connection cannot carry another request.
      const bool has_body = is_chunked(req) || (req.has_header("Content-Length") && req.get_header_value("Content-Length") != "0");
      if (handled && has_body_method(req) && has_body) close_after_answer(req, res, s.bound_port);
    });
    if (!handled && res.status >= 400) handled = true;  // the guard threw
    return handled ? httplib::Server::HandlerResponse::Handled : httplib::Server::HandlerResponse::Unhandled;
  });
  s.http.set_exception_handler([&s](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    s.guarded(res, [&] { std::rethrow_exception(ep); });
  });
  s.http.set_error_handler([&s](const httplib::Request& req, httplib::Response& res) {
    // httplib's own refusals (404 no route, 413, 400 malformed HTTP) get the same JSON error
    // body as ours; ours already carry one.
    if (!res.body.empty() || res.has_header("Content-Type")) return;
    try {
      std::string message = "HTTP status " + std::to_string(res.status);
      if (res.status == 404) message = "no endpoint " + req.method + " " + req.path;
      if (res.status == 400) message = "malformed HTTP request";
      if (res.status == 413) message = "the request body is larger than the limit of " + std::to_string(s.limits.max_body_bytes) + " bytes";
      s.refused(res.status);
      send_error(res, res.status, message);
    } catch (...) {
      res.set_content(R"({"error": "unreadable request"})", "application/json");
    }
  });
}

Service::~Service() { stop(); }

void Service::get(const std::string& pattern, Handler handler) {
  impl_->http.Get(pattern, [this, handler = std::move(handler)](const httplib::Request& req, httplib::Response& res) {
    impl_->guarded(res, [&] { handler(req, res); });
  });
}

void Service::post(const std::string& pattern, BodyHandler handler) { impl_->http.Post(pattern, impl_->with_body(std::move(handler))); }

void Service::put(const std::string& pattern, BodyHandler handler) { impl_->http.Put(pattern, impl_->with_body(std::move(handler))); }

void Service::set_guard(Guard guard) { impl_->guard = std::move(guard); }

void Service::on_refusal(std::function<void(int)> observer) { impl_->refusal_observer = std::move(observer); }

Status Service::start(const std::string& host, int port) {
  Impl& s = *impl_;
  s.bound_port = port == 0 ? s.http.bind_to_any_port(host) : (s.http.bind_to_port(host, port) ? port : -1);
  if (s.bound_port <= 0) {
    return io_error(s.what + " could not bind " + host + (port ? ":" + std::to_string(port) : "") +
                    " (in use, or not an address of this machine)");
  }
  // Debian's httplib listens with a backlog of 5: a burst of more new connections than that
  // overflowed the accept queue, the kernel dropped their SYNs and clients waited 1 s for the
  // retransmission, or failed (the wrk socket errors at 64 connections). Listening again on
  // the bound socket raises the backlog to the system's limit.
  if (s.listening_socket >= 0) ::listen(s.listening_socket, SOMAXCONN);
  s.started = true;
  s.listener = std::thread([&s] {
    s.http.listen_after_bind();
    s.listener_returned = true;
  });
  // httplib's stop() does nothing until the listener runs: wait for it, so that a stop()
  // right after start() cannot leave the listener blocked in accept().
  while (!s.http.is_running() && !s.listener_returned) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!s.http.is_running()) {
    stop();
    return io_error(s.what + " on " + host + ":" + std::to_string(s.bound_port) + " stopped at once");
  }
  return Status::ok();
}

int Service::port() const { return impl_->bound_port; }

void Service::stop() {
  Impl& s = *impl_;
  if (s.started) s.http.stop();
  if (s.listener.joinable()) s.listener.join();
}

}  // namespace edgefleet::http
