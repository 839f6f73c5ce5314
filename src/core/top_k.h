// Internal: the k highest scores of one row of logits, for accuracy, instability and the
// server's classification output — one ranking rule everywhere.
#pragma once

#include <algorithm>
#include <numeric>
#include <vector>

namespace edgefleet {

// Indices of the min(k, count) largest scores, largest first.
inline std::vector<int> top_k_indices(const float* scores, int count, int k) {
  std::vector<int> order(static_cast<std::size_t>(count));
  std::iota(order.begin(), order.end(), 0);
  const int n = std::max(0, std::min(k, count));
  std::partial_sort(order.begin(), order.begin() + n, order.end(), [scores](int a, int b) { return scores[a] > scores[b]; });
  order.resize(static_cast<std::size_t>(n));
  return order;
}

}  // namespace edgefleet
