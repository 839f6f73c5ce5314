// Locality-sensitive hashing for nearest-neighbour lookup of hint vectors (papers/mistify.md
// §5.2): the peer coordinator indexes each device's spatio-temporal hints and asks for the
// devices whose data is probably most alike. p-stable (Gaussian) projections, as in Datar et
// al. 2004: h(v) = floor((a.v + b) / w), K of them concatenated per table, L tables.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "edgefleet/status.h"

namespace edgefleet {

struct LshOptions {
  int tables = 8;              // L
  int hashes_per_table = 4;    // K
  double bucket_width = 4.0;   // w, in the hints' units
  std::uint64_t seed = 1;
};

class LshIndex {
 public:
  LshIndex(int dimensions, LshOptions options = {});

  // Adds or replaces `id`'s vector. invalid_argument when the dimension differs.
  Status insert(const std::string& id, const std::vector<double>& vector);

  // Up to k ids nearest to `query` (Euclidean), nearest first, never `exclude`. Candidates
  // come from the query's buckets; when they hold fewer than k, every id is compared (exact
  // at small sizes, where buckets are sparse). invalid_argument on a dimension mismatch.
  Expected<std::vector<std::string>> nearest(const std::vector<double>& query, std::size_t k, const std::string& exclude = "") const;

  std::size_t size() const { return vectors_.size(); }
  // How many ids the last nearest() compared exactly: the sublinear part of the lookup.
  std::size_t last_compared() const { return last_compared_; }

 private:
  std::vector<std::int64_t> keys(const std::vector<double>& v) const;  // one bucket key per table

  int dimensions_;
  LshOptions options_;
  std::vector<std::vector<double>> projections_;  // tables * hashes rows of `dimensions_`
  std::vector<double> offsets_;                    // b per hash
  std::vector<std::unordered_map<std::int64_t, std::vector<std::string>>> buckets_;
  std::map<std::string, std::vector<double>> vectors_;
  std::map<std::string, std::vector<std::int64_t>> keys_of_;
  mutable std::size_t last_compared_ = 0;
};

}  // namespace edgefleet
