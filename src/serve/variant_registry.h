// Internal: the inference server's loaded variants (Triton's "model repository manager"):
// loading, unloading and re-syncing them from a repository folder, each with its pool of
// model copies and its online latency profile. Readers take an immutable snapshot, so a
// request keeps the variants it chose while others are loaded or unloaded.
#pragma once

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "edgefleet/classifier.h"
#include "edgefleet/latency_tracker.h"
#include "edgefleet/model_card.h"
#include "edgefleet/model_repository.h"
#include "edgefleet/selection.h"

namespace edgefleet {

class Variant;

// A model copy held for one inference; back in its variant's pool when destroyed.
class CopyLease {
 public:
  CopyLease(Variant& variant, int index) : variant_(&variant), index_(index) {}
  CopyLease(CopyLease&& other) noexcept : variant_(other.variant_), index_(other.index_) { other.variant_ = nullptr; }
  CopyLease(const CopyLease&) = delete;
  CopyLease& operator=(const CopyLease&) = delete;
  CopyLease& operator=(CopyLease&&) = delete;
  ~CopyLease();
  Classifier& model();

 private:
  Variant* variant_;
  int index_;
};

// One loaded variant: its card, a pool of model copies (a Classifier is single-threaded) and
// its online latency profile.
class Variant {
 public:
  std::string task;
  std::string name;
  std::string card_path;
  std::filesystem::file_time_type card_mtime;
  ModelCard card;

  // A free copy, waiting for one while fewer than `max_queue` requests wait already;
  // nullopt when the queue is full (the server answers 503).
  std::optional<CopyLease> acquire(int max_queue);
  int queued() const;

  double accuracy() const { return card.accuracy ? card.accuracy->top1 : 0.0; }
  VariantProfile profile() const;
  void record(double ms);
  // The input tensor shape one image takes: [C, H, W].
  std::vector<std::int64_t> item_shape() const { return {card.input.channels(), card.input.height, card.input.width}; }

  std::atomic<std::int64_t> requests{0};

 private:
  friend class CopyLease;
  friend class VariantRegistry;
  std::vector<std::unique_ptr<Classifier>> copies_;
  mutable std::mutex pool_mutex_;
  std::condition_variable pool_cv_;
  std::vector<int> free_copies_;
  int waiting_ = 0;
  mutable std::mutex profile_mutex_;
  LatencyTracker tracker_{LatencyTrackerOptions{/*warmup=*/2, /*alpha=*/0.5, /*cold_sigmas=*/1e300, 5}};
};

struct Registry {
  std::map<std::string, std::shared_ptr<Variant>> variants;
  std::map<std::string, std::vector<std::shared_ptr<Variant>>> tasks;  // sorted by variant name
};

struct RegistryOptions {
  std::string repository;
  bool require_sha256 = false;
  int instances_per_variant = 2;
  int engine_threads = 1;
  int warmup_runs = 12;
  std::function<void(const std::string&)> log;
};

class VariantRegistry {
 public:
  explicit VariantRegistry(RegistryOptions options);

  std::shared_ptr<const Registry> snapshot() const;
  // Loads the given entries, replacing loaded variants of the same names; all or none.
  Status load_entries(const std::vector<RepositoryEntry>& entries);
  // A variant, or every variant of a task, from the repository.
  Status load(const std::string& name);
  Status unload(const std::string& name);
  // Loads new or changed variants, unloads removed ones; a variant that fails to load is
  // logged and skipped, and the first failure returned.
  Status sync();

 private:
  Expected<std::shared_ptr<Variant>> load_variant(const RepositoryEntry& entry);
  template <typename Fn>
  void edit(Fn&& fn);
  void log(const std::string& line) const;

  RegistryOptions options_;
  mutable std::mutex registry_mutex_;
  std::shared_ptr<const Registry> registry_ = std::make_shared<Registry>();
  std::mutex load_mutex_;  // one load/unload/sync at a time
};

}  // namespace edgefleet
