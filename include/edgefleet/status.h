// Status and Expected<T>: how every fallible edgefleet call reports failure.
// A Status is a code plus a one-line message naming the bad value and what was expected.
// Value types; safe to copy between threads. See docs/errors.md for the error model.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace edgefleet {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // malformed config, flag, spec or request
  kNotFound,         // missing file, class, model, key
  kCorrupt,          // a file exists but its contents are unreadable
  kUnsupported,      // valid but not handled (format, layer, precision)
  kIoError,          // the operating system refused a read or write
  kInternal,         // a bug: an invariant did not hold
  kUnavailable,      // busy or overloaded now; the same call may succeed later
  kDeadlineExceeded, // the answer would come too late to be of use; not attempted
};

const char* status_code_name(StatusCode code);

class Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }
  bool is_ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "not_found: fashion-mnist: no such folder '/x'" — one line, for logs and CLI errors.
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

Status invalid_argument(std::string message);
Status not_found(std::string message);
Status corrupt(std::string message);
Status unsupported(std::string message);
Status io_error(std::string message);
Status internal_error(std::string message);
Status unavailable(std::string message);
Status deadline_exceeded(std::string message);

// The exception used *inside* the library; public functions catch it and return a Status.
class Error : public std::runtime_error {
 public:
  explicit Error(Status status) : std::runtime_error(status.to_string()), status_(std::move(status)) {}
  const Status& status() const { return status_; }

 private:
  Status status_;
};

// Either a value or a failed Status. value() on a failed Expected throws Error.
template <typename T>
class Expected {
 public:
  Expected(T value) : state_(std::move(value)) {}  // NOLINT: implicit by design
  Expected(Status status) : state_(std::move(status)) {  // NOLINT
    if (std::get<Status>(state_).is_ok()) state_ = Status(StatusCode::kInternal, "Expected built from an OK status");
  }

  bool has_value() const { return std::holds_alternative<T>(state_); }
  explicit operator bool() const { return has_value(); }
  const Status& status() const {
    static const Status kOk;
    return has_value() ? kOk : std::get<Status>(state_);
  }
  T& value() & {
    if (!has_value()) throw Error(std::get<Status>(state_));
    return std::get<T>(state_);
  }
  const T& value() const& {
    if (!has_value()) throw Error(std::get<Status>(state_));
    return std::get<T>(state_);
  }
  T&& value() && {
    if (!has_value()) throw Error(std::get<Status>(state_));
    return std::get<T>(std::move(state_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> state_;
};

// The one line that matters in a multi-line engine message (libtorch's carry tracebacks).
std::string first_meaningful_line(const std::string& message);

// Runs fn (which may throw Error or std::exception) and turns a throw into a Status.
template <typename Fn>
auto capture(Fn&& fn) -> Expected<decltype(fn())> {
  try {
    return fn();
  } catch (const Error& e) {
    return e.status();
  } catch (const std::exception& e) {
    return Status(StatusCode::kInternal, first_meaningful_line(e.what()));
  }
}

}  // namespace edgefleet
