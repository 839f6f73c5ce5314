// Internal: the median of a sample (upper median for even sizes), for latency summaries.
#pragma once

#include <algorithm>
#include <vector>

namespace edgefleet {

inline double median_of(std::vector<double> values) {
  if (values.empty()) return 0.0;
  const auto middle = values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2);
  std::nth_element(values.begin(), middle, values.end());
  return *middle;
}

}  // namespace edgefleet
