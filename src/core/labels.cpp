#include "edgefleet/labels.h"

#include <fstream>
#include <sstream>
#include <unordered_set>

namespace edgefleet {
namespace {

std::string trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  const auto end = s.find_last_not_of(" \t\r\n");
  return s.substr(begin, end - begin + 1);
}

bool looks_like_wnid(const std::string& token) {
  // ImageNet ids are 'n' followed by 8 digits; other id schemes use the `id : name` form.
  if (token.size() != 9 || token[0] != 'n') return false;
  for (std::size_t i = 1; i < token.size(); ++i) {
    if (token[i] < '0' || token[i] > '9') return false;
  }
  return true;
}

}  // namespace

std::optional<int> ClassList::index_of(const std::string& folder) const {
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (keys[i] == folder) return static_cast<int>(i);
  }
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] == folder) return static_cast<int>(i);
  }
  return std::nullopt;
}

Expected<ClassList> parse_labels(const std::string& text, const std::string& origin) {
  ClassList list;
  std::unordered_set<std::string> seen;
  std::istringstream in(text);
  std::string raw;
  int line_number = 0;
  while (std::getline(in, raw)) {
    ++line_number;
    const std::string line = trim(raw);
    if (line.empty()) continue;
    std::string key;
    std::string name;
    const auto colon = line.find(" : ");
    if (colon != std::string::npos) {
      key = trim(line.substr(0, colon));
      name = trim(line.substr(colon + 3));
    } else {
      const auto space = line.find_first_of(" \t");
      if (space != std::string::npos && looks_like_wnid(line.substr(0, space))) {
        key = line.substr(0, space);
        name = trim(line.substr(space + 1));
      } else {
        key = line;
        name = line;
      }
    }
    if (!seen.insert(key).second) {
      return invalid_argument(origin + ":" + std::to_string(line_number) + ": class '" + key +
                              "' is listed twice");
    }
    list.keys.push_back(key);
    list.names.push_back(name);
  }
  if (list.keys.empty()) return invalid_argument(origin + ": no class names found");
  return list;
}

Expected<ClassList> read_labels_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return not_found("labels file '" + path + "' does not exist or cannot be read");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return parse_labels(buffer.str(), path);
}

}  // namespace edgefleet
