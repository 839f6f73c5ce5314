// Internal: the names of an enum's values, one table per enum, read and written the same way
// everywhere (configs, specs, the command line, reports).
//
//   const NamedValues<Mode> kModes = {{"collective", Mode::kCollective}, {"independent", Mode::kIndependent}};
//   auto mode = parse_named(kModes, "mode", text);   // "mode 'x' is not one of: collective, independent"
//   std::string name = name_of(kModes, Mode::kCollective);
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "edgefleet/status.h"

namespace edgefleet {

template <typename T>
using NamedValues = std::vector<std::pair<const char*, T>>;

template <typename T>
std::vector<std::string> names_of(const NamedValues<T>& table) {
  std::vector<std::string> out;
  for (const auto& entry : table) out.emplace_back(entry.first);
  return out;
}

template <typename T>
std::string joined_names(const NamedValues<T>& table) {
  std::string out;
  for (const auto& entry : table) out += (out.empty() ? "" : ", ") + std::string(entry.first);
  return out;
}

// `what` names the field in the message.
template <typename T>
Expected<T> parse_named(const NamedValues<T>& table, const std::string& what, const std::string& value) {
  for (const auto& [name, v] : table) {
    if (value == name) return v;
  }
  return invalid_argument(what + " '" + value + "' is not one of: " + joined_names(table));
}

template <typename T>
std::string name_of(const NamedValues<T>& table, T value) {
  for (const auto& [name, v] : table) {
    if (v == value) return name;
  }
  return "?";
}

}  // namespace edgefleet
