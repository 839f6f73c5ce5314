#include "serve/batch_scheduler.h"

#include <algorithm>
#include <cmath>
#include <future>
#include <limits>

#include "core/elapsed.h"

namespace edgefleet {
namespace {

using Clock = std::chrono::steady_clock;

// Weight of the newest run in a batch size's running time (as the variant's latency tracker).
constexpr double kBatchAlpha = 0.5;

double ms_between(SteadyTime from, SteadyTime to) { return std::chrono::duration<double, std::milli>(to - from).count(); }

SteadyTime plus_ms(SteadyTime t, double ms) {
  return t + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(ms));
}

}  // namespace

struct BatchScheduler::Pending {
  std::vector<float> input;
  int n = 0;
  SteadyTime deadline;
  bool droppable = false;
  SteadyTime submitted;
  std::promise<Expected<BatchRun>> answer;
};

BatchScheduler::BatchScheduler(std::vector<Classifier*> copies, std::int64_t item_floats, int classes, BatchingOptions options,
                               const std::function<void(Classifier&)>& warm_up)
    : item_floats_(item_floats), classes_(classes), options_(options), workers_count_(static_cast<int>(copies.size())) {
  idle_ = workers_count_;  // counted idle from the start: a thread not yet waiting is free all the same
  // The worker reads warm_up, warmed and warmed_cv (the constructor's) only when there is a
  // warm-up, and the constructor then waits for every worker to be done with them.
  const bool warm = static_cast<bool>(warm_up);
  int warmed = 0;
  std::condition_variable warmed_cv;
  for (Classifier* copy : copies) {
    workers_.emplace_back([this, copy, warm, &warm_up, &warmed, &warmed_cv] {
      if (warm) {
        warm_up(*copy);
        std::lock_guard<std::mutex> lock(mutex_);
        ++warmed;
        warmed_cv.notify_all();  // under the lock: the constructor's locals outlive this call
      }
      work(copy);
    });
  }
  if (warm) {
    std::unique_lock<std::mutex> lock(mutex_);
    warmed_cv.wait(lock, [&] { return warmed == workers_count_; });
  }
}

BatchScheduler::~BatchScheduler() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    for (auto& [deadline, pending] : queue_) pending->answer.set_value(unavailable("the variant is being unloaded; retry"));
    queue_.clear();
    queued_items_ = 0;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

int BatchScheduler::queued() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int>(queue_.size());
}

double BatchScheduler::batch_ms(int items) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return batch_ms_locked(items);
}

double BatchScheduler::batch_ms_locked(int items) const {
  if (batch_ms_.empty()) return 0.0;
  const auto above = batch_ms_.lower_bound(items);
  if (above != batch_ms_.end() && above->first == items) return above->second;
  if (above == batch_ms_.begin()) return above->second * items / above->first;  // below every size seen
  const auto below = std::prev(above);
  if (above == batch_ms_.end()) return below->second * items / below->first;  // beyond every size seen
  const double t = static_cast<double>(items - below->first) / (above->first - below->first);
  return below->second + t * (above->second - below->second);
}

void BatchScheduler::record_batch(int items, double ms) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto [it, fresh] = batch_ms_.emplace(items, ms);
  if (!fresh) it->second = kBatchAlpha * ms + (1 - kBatchAlpha) * it->second;
}

int BatchScheduler::efficient_batch() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return efficient_batch_locked();
}

int BatchScheduler::efficient_batch_locked() const {
  int best = options_.max_batch, largest = 0;
  double best_rate = 0.0;
  for (const auto& [items, ms] : batch_ms_) {
    if (items > options_.max_batch || ms <= 0) continue;
    largest = items;
    const double rate = items / ms;
    if (rate >= best_rate) best = items, best_rate = rate;  // ties: the larger batch
  }
  // Only a larger size measured slower caps the batch: sizes never run are worth trying.
  return best == largest ? options_.max_batch : best;
}

double BatchScheduler::expected_wait_ms() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (idle_ > 0 && queue_.empty()) return 0.0;
  // The queue drains in full batches across the workers; a busy worker is half-way through.
  const int batch = efficient_batch_locked();
  const int per_round = std::max(1, batch) * std::max(1, workers_count_);
  const int rounds = queued_items_ / per_round;
  const double full = batch_ms_locked(std::max(1, batch));
  return (idle_ == 0 ? 0.5 * full : 0.0) + rounds * full;
}

Expected<BatchRun> BatchScheduler::run(std::vector<float> input, int n, SteadyTime deadline, bool droppable) {
  if (n < 1 || static_cast<std::int64_t>(input.size()) != n * item_floats_) {
    return invalid_argument("batch: input of " + std::to_string(input.size()) + " floats does not hold " + std::to_string(n) + " items");
  }
  Pending pending;
  pending.input = std::move(input);
  pending.n = n;
  pending.deadline = deadline;
  pending.droppable = droppable;
  pending.submitted = Clock::now();
  auto answer = pending.answer.get_future();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return unavailable("the variant is being unloaded; retry");
    // A request an idle worker takes at once does not wait; beyond that, max_queue may.
    if (static_cast<int>(queue_.size()) >= options_.max_queue + idle_) {
      return unavailable(std::to_string(queue_.size()) + " requests queued (the limit); retry later");
    }
    queue_.emplace(deadline, &pending);
    queued_items_ += n;
  }
  work_cv_.notify_one();
  return answer.get();
}

void BatchScheduler::drop_late(SteadyTime now) {
  for (auto it = queue_.begin(); it != queue_.end();) {
    Pending* p = it->second;
    if (p->droppable && p->deadline <= now) {
      p->answer.set_value(deadline_exceeded("its deadline passed after " + std::to_string(static_cast<int>(ms_between(p->submitted, now))) +
                                            " ms in the queue; not run"));
      queued_items_ -= p->n;
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
}

std::vector<BatchScheduler::Pending*> BatchScheduler::form_batch(SteadyTime now) {
  std::vector<Pending*> batch;
  const int limit = efficient_batch_locked();
  int items = 0;
  SteadyTime earliest = SteadyTime::max();  // the batch's earliest droppable deadline
  for (auto it = queue_.begin(); it != queue_.end();) {
    Pending* p = it->second;
    bool take = batch.empty();  // the earliest always runs: its deadline has not passed
    if (!take && items + p->n <= limit) {
      const SteadyTime limit = p->droppable ? std::min(earliest, p->deadline) : earliest;
      take = limit == SteadyTime::max() || plus_ms(now, batch_ms_locked(items + p->n)) <= limit;
    }
    if (!take) {
      ++it;
      continue;
    }
    batch.push_back(p);
    items += p->n;
    if (p->droppable) earliest = std::min(earliest, p->deadline);
    queued_items_ -= p->n;
    it = queue_.erase(it);
    if (items >= limit) break;
  }
  return batch;
}

void BatchScheduler::work(Classifier* model) {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });  // idle_ counts this worker here
    if (stopping_) return;
    --idle_;
    drop_late(Clock::now());
    if (queue_.empty()) {
      ++idle_;
      continue;
    }
    // Let the batch fill — only while every other copy is busy (an idle copy could run the
    // request now, so waiting would only add latency) — until it is full, the oldest request
    // has waited its delay, or the earliest deadline leaves no more room.
    const auto others_busy = [&] { return workers_count_ > 1 && idle_ == 0; };
    if (options_.max_batch > 1 && options_.max_queue_delay_ms > 0 && others_busy()) {
      while (!stopping_ && !queue_.empty() && queued_items_ < efficient_batch_locked() && others_busy()) {
        SteadyTime oldest = SteadyTime::max(), earliest = SteadyTime::max();
        for (const auto& [deadline, p] : queue_) {
          oldest = std::min(oldest, p->submitted);
          if (p->droppable) earliest = std::min(earliest, p->deadline);
        }
        SteadyTime until = plus_ms(oldest, options_.max_queue_delay_ms);
        if (earliest != SteadyTime::max()) until = std::min(until, plus_ms(earliest, -batch_ms_locked(efficient_batch_locked())));
        if (Clock::now() >= until) break;
        work_cv_.wait_until(lock, until);
      }
      if (stopping_) return;
      drop_late(Clock::now());
      if (queue_.empty()) {
        ++idle_;
        continue;
      }
    }
    const auto started = Clock::now();
    std::vector<Pending*> batch = form_batch(started);
    lock.unlock();

    int items = 0;
    for (Pending* p : batch) items += p->n;
    std::vector<float> input;
    const float* data = batch.front()->input.data();
    if (batch.size() > 1) {
      input.reserve(static_cast<std::size_t>(items * item_floats_));
      for (Pending* p : batch) input.insert(input.end(), p->input.begin(), p->input.end());
      data = input.data();
    }
    auto logits = model->infer(data, items);
    const double infer_ms = ms_since(started);
    if (logits && logits->size() != static_cast<std::size_t>(items) * classes_) {
      logits = internal_error("the model answered " + std::to_string(logits->size()) + " logits for " + std::to_string(items) +
                              " items of " + std::to_string(classes_) + " classes");
    }
    if (logits) record_batch(items, infer_ms);
    std::size_t offset = 0;
    for (Pending* p : batch) {
      if (!logits) {
        p->answer.set_value(logits.status());
        continue;
      }
      const std::size_t rows = static_cast<std::size_t>(p->n) * classes_;
      BatchRun run;
      run.logits.assign(logits->begin() + static_cast<std::ptrdiff_t>(offset), logits->begin() + static_cast<std::ptrdiff_t>(offset + rows));
      run.queue_ms = ms_between(p->submitted, started);
      run.infer_ms = infer_ms;
      run.batch_items = items;
      offset += rows;
      p->answer.set_value(std::move(run));
    }
    lock.lock();
    ++idle_;
  }
}

}  // namespace edgefleet
