// p-stable LSH: Gaussian projections quantised into buckets, L tables of K hashes each.
#include "edgefleet/lsh_index.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

namespace edgefleet {

LshIndex::LshIndex(int dimensions, LshOptions options) : dimensions_(dimensions), options_(options) {
  options_.tables = std::max(1, options_.tables);
  options_.hashes_per_table = std::max(1, options_.hashes_per_table);
  if (!(options_.bucket_width > 0)) options_.bucket_width = 1.0;
  std::mt19937_64 rng(options_.seed);
  std::normal_distribution<double> gaussian(0.0, 1.0);
  std::uniform_real_distribution<double> uniform(0.0, options_.bucket_width);
  const int hashes = options_.tables * options_.hashes_per_table;
  projections_.assign(static_cast<std::size_t>(hashes), std::vector<double>(static_cast<std::size_t>(std::max(0, dimensions_))));
  for (auto& row : projections_) {
    for (auto& a : row) a = gaussian(rng);
    offsets_.push_back(uniform(rng));
  }
  buckets_.resize(static_cast<std::size_t>(options_.tables));
}

std::vector<std::int64_t> LshIndex::keys(const std::vector<double>& v) const {
  std::vector<std::int64_t> result;
  std::size_t h = 0;
  for (int t = 0; t < options_.tables; ++t) {
    std::uint64_t key = 1469598103934665603ull;  // FNV-1a over the K quantised projections
    for (int k = 0; k < options_.hashes_per_table; ++k, ++h) {
      double dot = offsets_[h];
      for (std::size_t d = 0; d < v.size(); ++d) dot += projections_[h][d] * v[d];
      const auto q = static_cast<std::int64_t>(std::floor(dot / options_.bucket_width));
      key = (key ^ static_cast<std::uint64_t>(q)) * 1099511628211ull;
    }
    result.push_back(static_cast<std::int64_t>(key));
  }
  return result;
}

Status LshIndex::insert(const std::string& id, const std::vector<double>& vector) {
  if (static_cast<int>(vector.size()) != dimensions_) {
    return invalid_argument("hint of '" + id + "' has " + std::to_string(vector.size()) + " values, the index " + std::to_string(dimensions_));
  }
  for (double x : vector) {
    if (!std::isfinite(x)) return invalid_argument("hint of '" + id + "' holds a value that is not a finite number");
  }
  if (auto old = keys_of_.find(id); old != keys_of_.end()) {
    for (std::size_t t = 0; t < old->second.size(); ++t) {
      auto& bucket = buckets_[t][old->second[t]];
      bucket.erase(std::remove(bucket.begin(), bucket.end(), id), bucket.end());
    }
  }
  auto k = keys(vector);
  for (std::size_t t = 0; t < k.size(); ++t) buckets_[t][k[t]].push_back(id);
  keys_of_[id] = std::move(k);
  vectors_[id] = vector;
  return Status::ok();
}

Expected<std::vector<std::string>> LshIndex::nearest(const std::vector<double>& query, std::size_t k, const std::string& exclude) const {
  if (static_cast<int>(query.size()) != dimensions_) {
    return invalid_argument("query has " + std::to_string(query.size()) + " values, the index " + std::to_string(dimensions_));
  }
  std::set<std::string> candidates;
  const auto query_keys = keys(query);
  for (std::size_t t = 0; t < query_keys.size(); ++t) {
    const auto bucket = buckets_[t].find(query_keys[t]);
    if (bucket == buckets_[t].end()) continue;
    for (const auto& id : bucket->second) {
      if (id != exclude) candidates.insert(id);
    }
  }
  if (candidates.size() < k) {
    for (const auto& [id, v] : vectors_) {
      if (id != exclude) candidates.insert(id);
    }
  }
  std::vector<std::pair<double, std::string>> ranked;
  for (const auto& id : candidates) {
    const auto& v = vectors_.at(id);
    double d2 = 0;
    for (std::size_t d = 0; d < v.size(); ++d) d2 += (v[d] - query[d]) * (v[d] - query[d]);
    ranked.emplace_back(d2, id);
  }
  last_compared_ = ranked.size();
  std::sort(ranked.begin(), ranked.end());
  std::vector<std::string> result;
  for (std::size_t i = 0; i < ranked.size() && i < k; ++i) result.push_back(ranked[i].second);
  return result;
}

}  // namespace edgefleet
