// ClassList: the ordered class names of a task, as read from a labels file.
// A line is `wnid name`, `wnid : name` or just `name`; the line number is the class index.
// Value type; thread-safe to share read-only.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "edgefleet/status.h"

namespace edgefleet {

struct ClassList {
  std::vector<std::string> keys;   // what a folder is named after: the wnid, or the name
  std::vector<std::string> names;  // human-readable names, same order

  std::size_t size() const { return keys.size(); }
  // The index of the class a folder called `folder` belongs to, or nullopt.
  std::optional<int> index_of(const std::string& folder) const;
};

// Parses labels text. Fails with invalid_argument on an empty list or a duplicated key.
Expected<ClassList> parse_labels(const std::string& text, const std::string& origin);
// Reads and parses a labels file. Fails with not_found when it does not exist.
Expected<ClassList> read_labels_file(const std::string& path);

}  // namespace edgefleet
