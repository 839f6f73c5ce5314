#include "serve/variant_registry.h"

#include <algorithm>
#include <chrono>
#include <set>

#include "core/elapsed.h"

namespace fs = std::filesystem;

namespace edgefleet {

Expected<BatchRun> Variant::run(std::vector<float> input, int n, SteadyTime deadline, bool droppable) {
  return scheduler_->run(std::move(input), n, deadline, droppable);
}

int Variant::queued() const { return scheduler_ ? scheduler_->queued() : 0; }

VariantProfile Variant::profile() const {
  const double waiting = scheduler_ ? scheduler_->expected_wait_ms() : 0.0;
  std::lock_guard<std::mutex> lock(profile_mutex_);
  return {name, accuracy(), tracker_.mean_ms() + waiting, tracker_.std_ms()};
}

double Variant::run_ms() const {
  std::lock_guard<std::mutex> lock(profile_mutex_);
  return tracker_.mean_ms();
}

void Variant::record(double ms) {
  std::lock_guard<std::mutex> lock(profile_mutex_);
  tracker_.add(ms);
}

VariantRegistry::VariantRegistry(RegistryOptions options) : options_(std::move(options)) {}

void VariantRegistry::log(const std::string& line) const {
  if (options_.log) options_.log(line);
}

std::shared_ptr<const Registry> VariantRegistry::snapshot() const {
  std::lock_guard<std::mutex> lock(registry_mutex_);
  return registry_;
}

// Replaces the registry with `fn` applied to a copy of it.
template <typename Fn>
void VariantRegistry::edit(Fn&& fn) {
  std::lock_guard<std::mutex> lock(registry_mutex_);
  auto next = std::make_shared<Registry>(*registry_);
  fn(*next);
  next->tasks.clear();
  for (const auto& [name, v] : next->variants) next->tasks[v->task].push_back(v);
  registry_ = std::move(next);
}

Expected<std::shared_ptr<Variant>> VariantRegistry::load_variant(const RepositoryEntry& entry) {
  return capture([&] {
    auto v = std::make_shared<Variant>();
    v->task = entry.task;
    v->name = entry.variant;
    v->card_path = entry.card_path;
    v->card_mtime = fs::last_write_time(entry.card_path);
    auto card = read_card(entry.card_path);
    if (!card) throw Error(Status(card.status().code(), "variant '" + entry.variant + "': " + card.status().message()));
    v->card = std::move(card).value();
    if (v->card.sha256.empty()) {
      if (options_.require_sha256) {
        throw Error(invalid_argument("variant '" + entry.variant + "': its card has no sha256, and the server requires one"));
      }
      log("variant " + entry.variant + ": its card has no sha256; the model file is loaded unverified");
    }
    LoadOptions load;
    load.threads = options_.engine_threads;
    for (int i = 0; i < std::max(1, options_.instances_per_variant); ++i) {
      auto model = load_classifier(v->card, load);
      if (!model) throw Error(Status(model.status().code(), "variant '" + entry.variant + "': " + model.status().message()));
      v->copies_.push_back(std::move(model).value());
    }
    // Warm-up: the first runs are slow (allocation, lazy init) and seed the profiles, the
    // request profile at batch 1 and the batcher's at 1, the powers of two and max_batch.
    const std::int64_t item_floats = static_cast<std::int64_t>(v->card.input.channels()) * v->card.input.height * v->card.input.width;
    const int max_batch = std::max(1, options_.batching.max_batch);
    std::vector<float> zeros(static_cast<std::size_t>(item_floats * max_batch), 0.0f);
    // The workers stay idle until the variant is published, so warm-up may use the copies.
    std::vector<Classifier*> copies;
    for (auto& c : v->copies_) copies.push_back(c.get());
    // Untimed runs on each worker thread, at every size the batcher will run (see below).
    const auto warm_worker = [&zeros, max_batch](Classifier& copy) {
      for (int items = 1; items <= max_batch; items = items == max_batch ? max_batch + 1 : std::min(items * 2, max_batch)) {
        for (int r = 0; r < 2; ++r) (void)copy.infer(zeros.data(), items);
      }
    };
    v->scheduler_ = std::make_unique<BatchScheduler>(copies, item_floats, v->card.classes, options_.batching,
                                                     options_.warmup_runs > 0 ? warm_worker : std::function<void(Classifier&)>());
    const auto warm = [&](int runs, int items) {
      for (int r = 0; r < runs; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        auto out = v->copies_[static_cast<std::size_t>(r) % v->copies_.size()]->infer(zeros.data(), items);
        if (!out) throw Error(Status(out.status().code(), "variant '" + entry.variant + "': warm-up: " + out.status().message()));
        const double ms = ms_since(t0);
        if (items == 1) v->record(ms);
        if (r >= 2) v->scheduler_->record_batch(items, ms);  // after the first two, slow ones
      }
    };
    warm(options_.warmup_runs, 1);
    for (int items = 2; items < max_batch; items *= 2) warm(std::max(3, options_.warmup_runs / 3), items);
    if (max_batch > 1) warm(std::max(3, options_.warmup_runs / 3), max_batch);
    if (!v->card.accuracy) log("variant " + v->name + ": its card records no accuracy; selection treats it as 0");
    return v;
  });
}

Status VariantRegistry::load_entries(const std::vector<RepositoryEntry>& entries) {
  std::vector<std::shared_ptr<Variant>> loaded;
  for (const auto& e : entries) {
    auto v = load_variant(e);
    if (!v) return v.status();
    loaded.push_back(std::move(v).value());
  }
  edit([&](Registry& r) {
    for (auto& v : loaded) r.variants[v->name] = v;
  });
  for (const auto& v : loaded) {
    const auto p = v->profile();
    log("loaded " + v->task + "/" + v->name + " (accuracy " + std::to_string(p.accuracy) + ", " + std::to_string(p.mean_ms) + " ms)");
  }
  return Status::ok();
}

Status VariantRegistry::load(const std::string& name) {
  std::lock_guard<std::mutex> lock(load_mutex_);
  auto entries = scan_repository(options_.repository);
  if (!entries) return entries.status();
  std::vector<RepositoryEntry> chosen;
  for (const auto& e : entries.value()) {
    if (e.variant == name || e.task == name) chosen.push_back(e);
  }
  if (chosen.empty()) return not_found("no task or variant '" + name + "' in the repository '" + options_.repository + "'");
  return load_entries(chosen);
}

Status VariantRegistry::unload(const std::string& name) {
  std::lock_guard<std::mutex> lock(load_mutex_);
  std::vector<std::string> removed;
  edit([&](Registry& r) {
    for (auto it = r.variants.begin(); it != r.variants.end();) {
      if (it->first == name || it->second->task == name) {
        removed.push_back(it->first);
        it = r.variants.erase(it);
      } else {
        ++it;
      }
    }
  });
  if (removed.empty()) return not_found("no loaded task or variant '" + name + "'");
  for (const auto& r : removed) log("unloaded " + r);
  return Status::ok();
}

Status VariantRegistry::sync() {
  std::lock_guard<std::mutex> lock(load_mutex_);
  auto entries = scan_repository(options_.repository);
  if (!entries) return entries.status();
  const auto current = snapshot();
  std::vector<RepositoryEntry> changed;
  std::set<std::string> present;
  for (const auto& e : entries.value()) {
    present.insert(e.variant);
    auto it = current->variants.find(e.variant);
    std::error_code ec;
    const auto mtime = fs::last_write_time(e.card_path, ec);
    if (it == current->variants.end() || it->second->card_path != e.card_path || it->second->card_mtime != mtime) changed.push_back(e);
  }
  std::vector<std::string> gone;
  for (const auto& [name, v] : current->variants) {
    if (!present.count(name)) gone.push_back(name);
  }
  if (!gone.empty()) {
    edit([&](Registry& r) {
      for (const auto& g : gone) r.variants.erase(g);
    });
    for (const auto& g : gone) log("unloaded " + g + " (gone from the repository)");
  }
  Status first_failure;
  for (const auto& e : changed) {
    const Status s = load_entries({e});
    if (!s.is_ok()) {
      log("could not load " + e.task + "/" + e.variant + ": " + s.to_string());
      if (first_failure.is_ok()) first_failure = s;
    }
  }
  return first_failure;
}

}  // namespace edgefleet
