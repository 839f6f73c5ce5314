// Internal: reading config fields from JSON with messages that name the file and the field.
// Every reader throws Error(invalid_argument("<origin>: <where><key> ...")); callers wrap the
// parse in capture().
#pragma once

#include <nlohmann/json.hpp>

#include <cmath>
#include <iomanip>
#include <set>
#include <sstream>
#include <string>
#include <type_traits>

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

// The values a numeric field may take: [min, max], or (min, max] when min is exclusive.
struct Range {
  double min;
  double max;
  bool min_exclusive = false;
};
constexpr Range positive(double max) { return {0.0, max, true}; }
constexpr Range at_least(double min, double max) { return {min, max, false}; }
constexpr double kMaxSeed = 9007199254740992.0;  // 2^53: every integer up to it is a double

inline std::string range_text(const Range& r) {
  auto number = [](double v) {
    std::ostringstream out;
    out << std::setprecision(15) << v;
    return out.str();
  };
  return (r.min_exclusive ? "(" : "[") + number(r.min) + ", " + number(r.max) + "]";
}

// Reads j[key] into `out` when present: a number in `range` (a whole one when T is an
// integer type); otherwise the message names the field and the range.
template <typename T>
void read_number(const nlohmann::json& j, const char* key, T& out, const std::string& origin, const std::string& where, Range range) {
  if (!j.contains(key)) return;
  constexpr bool whole = std::is_integral_v<T>;
  const std::string expected = std::string(whole ? " must be a whole number in " : " must be a number in ") + range_text(range);
  if (!j[key].is_number()) fail(origin, where + key + expected + ", got " + j[key].dump());
  const double v = j[key].get<double>();
  const bool inside = std::isfinite(v) && (range.min_exclusive ? v > range.min : v >= range.min) && v <= range.max;
  if (!inside || (whole && v != std::floor(v))) fail(origin, where + key + expected + ", got " + j[key].dump());
  out = static_cast<T>(v);
}

inline void read_string(const nlohmann::json& j, const char* key, std::string& out, const std::string& origin, const std::string& where) {
  if (!j.contains(key)) return;
  if (!j[key].is_string()) fail(origin, where + key + " must be a string, got " + j[key].dump());
  out = j[key].get<std::string>();
}

inline void read_bool(const nlohmann::json& j, const char* key, bool& out, const std::string& origin, const std::string& where) {
  if (!j.contains(key)) return;
  if (!j[key].is_boolean()) fail(origin, where + key + " must be true or false");
  out = j[key].get<bool>();
}

}  // namespace edgefleet::json_fields
