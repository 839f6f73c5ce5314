// Internal: the inference server's loaded variants (Triton's "model repository manager"):
// loading, unloading and re-syncing them from a repository folder, each with its model copies
// behind a queue and batcher (serve/batch_scheduler.h) and its online latency profile. Readers take an immutable snapshot, so a
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
#include "serve/batch_scheduler.h"

namespace edgefleet {

// One loaded variant: its card, its model copies (a Classifier is single-threaded) behind
// their queue and batcher, and its online latency profile.
class Variant {
 public:
  std::string task;
  std::string name;
  std::string card_path;
  std::filesystem::file_time_type card_mtime;
  ModelCard card;

  // Runs `n` items on a copy, batched with other requests when batching is on
  // (serve/batch_scheduler.h: errors unavailable when the queue is full, deadline_exceeded).
  Expected<BatchRun> run(std::vector<float> input, int n, SteadyTime deadline, bool droppable);
  int queued() const;

  double accuracy() const { return card.accuracy ? card.accuracy->top1 : 0.0; }
  // What a request sent now is predicted to take: the learnt run time plus the current queue.
  VariantProfile profile() const;
  // The learnt run time alone, without the queue.
  double run_ms() const;
  // A request's run took `ms` (the run of the batch it was in).
  void record(double ms);
  // The input tensor shape one image takes: [C, H, W].
  std::vector<std::int64_t> item_shape() const { return {card.input.channels(), card.input.height, card.input.width}; }
  const BatchScheduler& scheduler() const { return *scheduler_; }

  std::atomic<std::int64_t> requests{0};

 private:
  friend class VariantRegistry;
  std::vector<std::unique_ptr<Classifier>> copies_;
  mutable std::mutex profile_mutex_;
  LatencyTracker tracker_{LatencyTrackerOptions{/*warmup=*/2, /*alpha=*/0.5, /*cold_sigmas=*/1e300, 5}};
  std::unique_ptr<BatchScheduler> scheduler_;  // last: its workers stop before the copies go
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
  int warmup_runs = 12;  // at batch 1; with batching, a third as many at each power of two and max_batch
  std::function<void(const std::string&)> log;
  BatchingOptions batching;
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
