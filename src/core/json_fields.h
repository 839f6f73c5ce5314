// Internal: reading config fields from JSON with messages that name the file and the field.
// Every reader throws Error(invalid_argument("<origin>: <where><key> ...")); callers wrap the
// parse in capture().
#pragma once

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "edgefleet/status.h"

namespace edgefleet::json_fields {

[[noreturn]] inline void fail(const std::string& origin, const std::string& what) { throw Error(invalid_argument(origin + ": " + what)); }

inline void check_keys(const nlohmann::json& j, const std::set<std::string>& allowed, const std::string& origin, const std::string& where) {
  for (const auto& [key, value] : j.items()) {
    if (!allowed.count(key)) {
      std::string names;
      for (const auto& a : allowed) names += (names.empty() ? "" : ", ") + a;
      fail(origin, where + "unknown field '" + key + "' (expected one of " + names + ")");
    }
  }
}

// Reads j[key] into `out` when present: a number, positive (or, with !positive, not negative).
template <typename T>
void read_number(const nlohmann::json& j, const char* key, T& out, const std::string& origin, const std::string& where, bool positive = true) {
  if (!j.contains(key)) return;
  if (!j[key].is_number()) fail(origin, where + key + " must be a number");
  const double v = j[key].get<double>();
  if (positive ? !(v > 0) : v < 0) fail(origin, where + key + (positive ? " must be positive" : " must not be negative"));
  out = static_cast<T>(v);
}

inline void read_bool(const nlohmann::json& j, const char* key, bool& out, const std::string& origin, const std::string& where) {
  if (!j.contains(key)) return;
  if (!j[key].is_boolean()) fail(origin, where + key + " must be true or false");
  out = j[key].get<bool>();
}

}  // namespace edgefleet::json_fields
