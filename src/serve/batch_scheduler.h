// Internal: one variant's queue and its deadline-aware dynamic batcher (Triton's dynamic
// batcher, with deadlines). Requests wait ordered by deadline, earliest first; a worker per
// model copy takes the earliest and adds the next ones while the batch stays within the
// efficient batch size — of the sizes up to `max_batch` whose run time has been learnt
// (online, per batch size), the one with the most items per millisecond: on a CPU a larger
// batch can be slower per item — and its predicted run time still lets every member meet its
// deadline. Requests that arrive while the copies are busy share the next run.
// A worker waits up to `max_queue_delay_ms` for a batch to fill only while every other copy is
// busy (an idle copy could run the request at once), and never so long that the earliest
// deadline would be missed: a lone request on an idle server is not delayed. A request still queued when its deadline
// passes is answered deadline_exceeded without reaching a model.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "edgefleet/classifier.h"
#include "edgefleet/status.h"

namespace edgefleet {

struct BatchingOptions {
  int max_batch = 1;                // items per model run; 1 = every request runs alone
  double max_queue_delay_ms = 0.0;  // how long the oldest request may wait for its batch to fill
  int max_queue = 64;               // requests waiting for a model beyond this: unavailable
};

using SteadyTime = std::chrono::steady_clock::time_point;

// What one request learnt from its run.
struct BatchRun {
  std::vector<float> logits;  // its own rows, n * classes
  double queue_ms = 0.0;      // from run() to its batch starting
  double infer_ms = 0.0;      // the batch's model run
  int batch_items = 0;        // items in that batch, its own included
};

class BatchScheduler {
 public:
  // One worker thread per copy; the copies stay owned by the caller and must outlive this.
  // `warm_up`, when given, runs on each worker thread with its copy before the worker takes
  // requests, and the constructor returns once every worker ran it: a model's first runs on a
  // thread pay that thread's one-time costs (libtorch's and oneDNN's per-thread state, the
  // allocator arena), which warm-up on another thread leaves to the first requests.
  BatchScheduler(std::vector<Classifier*> copies, std::int64_t item_floats, int classes, BatchingOptions options,
                 const std::function<void(Classifier&)>& warm_up = nullptr);
  ~BatchScheduler();  // answers what is still queued (unavailable) and joins the workers
  BatchScheduler(const BatchScheduler&) = delete;
  BatchScheduler& operator=(const BatchScheduler&) = delete;

  // Runs `n` items (n * item_floats floats), in a batch with others when batching is on.
  // With `droppable`, a request still queued at `deadline` is answered deadline_exceeded;
  // otherwise `deadline` only orders the queue. Errors: unavailable (queue full, shutting
  // down), deadline_exceeded, and the model's own.
  Expected<BatchRun> run(std::vector<float> input, int n, SteadyTime deadline, bool droppable);

  // Predicted wait before a request submitted now starts, from the queue and batch latency.
  double expected_wait_ms() const;
  int queued() const;
  // Predicted run time of a batch of `items`: the learnt time of that size, else interpolated
  // between learnt sizes (proportionally beyond them); 0 before any run.
  double batch_ms(int items) const;
  // The batch size runs stop growing at: of the learnt sizes up to max_batch, the one with
  // the most items per millisecond (ties: the larger) when a larger learnt size is slower per
  // item; otherwise max_batch (sizes never run are worth trying).
  int efficient_batch() const;
  // One run of `items` took `ms` (warm-up seeds the profile through this).
  void record_batch(int items, double ms);
  const BatchingOptions& options() const { return options_; }

 private:
  struct Pending;
  void work(Classifier* model);
  void drop_late(SteadyTime now);
  std::vector<Pending*> form_batch(SteadyTime now);
  double batch_ms_locked(int items) const;
  int efficient_batch_locked() const;

  const std::int64_t item_floats_;
  const int classes_;
  const BatchingOptions options_;
  const int workers_count_;
  mutable std::mutex mutex_;
  std::condition_variable work_cv_;
  std::multimap<SteadyTime, Pending*> queue_;  // by deadline (the ordering key)
  int queued_items_ = 0;
  int idle_ = 0;
  bool stopping_ = false;
  std::map<int, double> batch_ms_;  // items -> exponentially weighted run time
  std::vector<std::thread> workers_;
};

}  // namespace edgefleet
