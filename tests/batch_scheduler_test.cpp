// The variant queue's dynamic batcher: batches, deadlines, the queue limit and its order,
// against a model whose runs the test holds and releases.
#include "serve/batch_scheduler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <thread>

namespace edgefleet {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kClasses = 3;

// A model of one float per item whose logits are that float three times; each run waits
// until the test opens the gate, and the runs' inputs are recorded in order.
class GatedClassifier : public Classifier {
 public:
  const ModelCard& card() const override { return card_; }
  std::string engine() const override { return "gated test model"; }
  Expected<ModelCost> cost() override { return ModelCost{}; }
  void set_threads(int) override {}

  Expected<std::vector<float>> infer(const float* batch, int n) override {
    std::unique_lock<std::mutex> lock(mutex_);
    runs_.emplace_back(batch, batch + n);
    ++running_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
    std::vector<float> logits;
    for (int i = 0; i < n; ++i) logits.insert(logits.end(), kClasses, batch[i]);
    return logits;
  }

  void open() {
    std::lock_guard<std::mutex> lock(mutex_);
    open_ = true;
    cv_.notify_all();
  }
  // Waits until `count` runs have started.
  void wait_for_runs(int count) {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return running_ >= count; });
  }
  std::vector<std::vector<float>> runs() {
    std::lock_guard<std::mutex> lock(mutex_);
    return runs_;
  }

 private:
  ModelCard card_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
  int running_ = 0;
  std::vector<std::vector<float>> runs_;
};

const SteadyTime kFar = SteadyTime::max();

std::future<Expected<BatchRun>> submit(BatchScheduler& s, std::vector<float> items, SteadyTime deadline = kFar, bool droppable = false) {
  const int n = static_cast<int>(items.size());
  return std::async(std::launch::async, [&s, items, n, deadline, droppable] { return s.run(items, n, deadline, droppable); });
}

// Waits until `count` requests are queued.
void wait_queued(const BatchScheduler& s, int count) {
  while (s.queued() < count) std::this_thread::sleep_for(1ms);
}

TEST(BatchScheduler, RequestsThatArriveWhileTheModelIsBusyShareItsNextRun) {
  GatedClassifier model;
  BatchScheduler s({&model}, 1, kClasses, {/*max_batch=*/4, /*max_queue_delay_ms=*/0.0, /*max_queue=*/8});
  auto running = submit(s, {9});
  model.wait_for_runs(1);
  auto a = submit(s, {1});
  wait_queued(s, 1);
  auto b = submit(s, {2, 3});
  wait_queued(s, 2);
  auto c = submit(s, {4});
  wait_queued(s, 3);
  model.open();
  ASSERT_TRUE(running.get().has_value());
  const auto ra = a.get(), rb = b.get(), rc = c.get();
  ASSERT_TRUE(ra.has_value() && rb.has_value() && rc.has_value());
  EXPECT_EQ(ra->batch_items, 4);
  EXPECT_EQ(ra->logits, (std::vector<float>{1, 1, 1}));
  EXPECT_EQ(rb->logits, (std::vector<float>{2, 2, 2, 3, 3, 3}));
  EXPECT_EQ(rc->logits, (std::vector<float>{4, 4, 4}));
  EXPECT_EQ(model.runs().size(), 2u);
}

TEST(BatchScheduler, WhileTheOtherCopiesAreBusyAWorkerWaitsForItsBatchToFill) {
  GatedClassifier first, second;
  BatchScheduler s({&first, &second}, 1, kClasses, {4, /*max_queue_delay_ms=*/60'000, 8});
  auto running = submit(s, {9});
  while (first.runs().size() + second.runs().size() < 1) std::this_thread::sleep_for(1ms);
  auto a = submit(s, {1});  // the idle copy takes it and, the other being busy, waits for more
  auto b = submit(s, {2, 3});
  auto c = submit(s, {4});
  while (first.runs().size() + second.runs().size() < 2) std::this_thread::sleep_for(1ms);  // the batch started
  first.open();
  second.open();
  running.get();
  EXPECT_EQ(a.get()->batch_items, 4);  // full before the minute was up
  EXPECT_EQ(b.get()->batch_items, 4);
  EXPECT_EQ(c.get()->batch_items, 4);
}

TEST(BatchScheduler, ALoneRequestIsNotDelayedWhileACopyIsIdle) {
  GatedClassifier first, second;
  first.open();
  second.open();
  BatchScheduler s({&first, &second}, 1, kClasses, {8, /*max_queue_delay_ms=*/60'000, 8});
  const auto started = Clock::now();
  const auto run = s.run({1}, 1, kFar, false);
  ASSERT_TRUE(run.has_value());
  EXPECT_EQ(run->batch_items, 1);
  EXPECT_LT(Clock::now() - started, 30s);  // not the minute's queue delay
}

TEST(BatchScheduler, WithoutBatchingEveryRequestRunsAlone) {
  GatedClassifier model;
  model.open();
  BatchScheduler s({&model}, 1, kClasses, {1, 0.0, 8});
  auto a = submit(s, {1});
  auto b = submit(s, {2});
  EXPECT_EQ(a.get()->batch_items, 1);
  EXPECT_EQ(b.get()->batch_items, 1);
  EXPECT_EQ(model.runs().size(), 2u);
}

TEST(BatchScheduler, AFullQueueIsRefusedInsteadOfWaitedFor) {
  GatedClassifier model;
  BatchScheduler s({&model}, 1, kClasses, {1, 0.0, /*max_queue=*/1});
  auto running = submit(s, {1});
  model.wait_for_runs(1);  // the only worker is busy
  auto queued = submit(s, {2});
  wait_queued(s, 1);
  const auto refused = s.run({3}, 1, kFar, false);
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  model.open();
  EXPECT_TRUE(running.get().has_value());
  EXPECT_TRUE(queued.get().has_value());
}

TEST(BatchScheduler, ARequestWhoseDeadlinePassesInTheQueueNeverReachesTheModel) {
  GatedClassifier model;
  BatchScheduler s({&model}, 1, kClasses, {4, 0.0, 8});
  auto running = submit(s, {1});
  model.wait_for_runs(1);
  auto late = submit(s, {2}, Clock::now() + 20ms, /*droppable=*/true);
  auto undroppable = submit(s, {3}, Clock::now() + 20ms, /*droppable=*/false);
  wait_queued(s, 2);
  std::this_thread::sleep_for(60ms);
  model.open();
  EXPECT_TRUE(running.get().has_value());
  EXPECT_EQ(late.get().status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(undroppable.get().has_value());  // its deadline only ordered the queue
  for (const auto& run : model.runs()) EXPECT_EQ(std::count(run.begin(), run.end(), 2.0f), 0);
}

TEST(BatchScheduler, TheEarliestDeadlineRunsFirst) {
  GatedClassifier model;
  BatchScheduler s({&model}, 1, kClasses, {1, 0.0, 8});
  auto running = submit(s, {1});
  model.wait_for_runs(1);
  auto later = submit(s, {2}, Clock::now() + 10s);
  wait_queued(s, 1);
  auto sooner = submit(s, {3}, Clock::now() + 5s);
  wait_queued(s, 2);
  model.open();
  running.get(), later.get(), sooner.get();
  const auto runs = model.runs();
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[1], std::vector<float>{3});
  EXPECT_EQ(runs[2], std::vector<float>{2});
}

TEST(BatchScheduler, ABatchStopsGrowingWhereItsRunWouldMissAMembersDeadline) {
  GatedClassifier model;
  BatchScheduler s({&model}, 1, kClasses, {4, 0.0, 8});
  s.record_batch(1, 10'000.0);
  s.record_batch(4, 30'000.0);  // 4 is the efficient size; a batch of 3 is predicted at over 10 s
  auto running = submit(s, {9, 9, 9, 9});
  model.wait_for_runs(1);
  auto urgent = submit(s, {2}, Clock::now() + 2s, true);
  wait_queued(s, 1);
  auto relaxed = submit(s, {3, 4}, Clock::now() + 60s, true);
  wait_queued(s, 2);
  model.open();
  running.get();
  EXPECT_EQ(urgent.get()->batch_items, 1);  // alone: with the other its run would end too late
  EXPECT_EQ(relaxed.get()->batch_items, 2);
}

TEST(BatchScheduler, BatchesStopGrowingAtTheSizeWithTheMostItemsPerMillisecond) {
  GatedClassifier model;
  BatchScheduler s({&model}, 1, kClasses, {4, 0.0, 8});
  EXPECT_EQ(s.efficient_batch(), 4);  // nothing learnt: max_batch
  s.record_batch(1, 1000.0);
  EXPECT_EQ(s.efficient_batch(), 4);  // nothing larger measured slower
  s.record_batch(2, 1500.0);  // the best rate
  s.record_batch(4, 10'000.0);
  EXPECT_EQ(s.efficient_batch(), 2);
  auto running = submit(s, {9, 9});
  model.wait_for_runs(1);
  auto a = submit(s, {1});
  wait_queued(s, 1);
  auto b = submit(s, {2});
  wait_queued(s, 2);
  auto c = submit(s, {3});
  wait_queued(s, 3);
  model.open();
  running.get();
  EXPECT_EQ(a.get()->batch_items, 2);
  EXPECT_EQ(b.get()->batch_items, 2);
  EXPECT_EQ(c.get()->batch_items, 1);
}

TEST(BatchScheduler, BatchTimesAreInterpolatedBetweenSizesSeen) {
  GatedClassifier model;
  BatchScheduler s({&model}, 1, kClasses, {8, 0.0, 8});
  EXPECT_EQ(s.batch_ms(4), 0.0);  // nothing learnt yet
  s.record_batch(1, 2.0);
  s.record_batch(8, 9.0);
  EXPECT_DOUBLE_EQ(s.batch_ms(1), 2.0);
  EXPECT_DOUBLE_EQ(s.batch_ms(4), 5.0);
  EXPECT_DOUBLE_EQ(s.batch_ms(16), 18.0);  // proportional beyond the largest seen
  s.record_batch(8, 5.0);                  // running average, newest weighted 0.5
  EXPECT_DOUBLE_EQ(s.batch_ms(8), 7.0);
}

TEST(BatchScheduler, AnInputOfTheWrongSizeIsRefused) {
  GatedClassifier model;
  BatchScheduler s({&model}, 2, kClasses, {1, 0.0, 8});
  EXPECT_EQ(s.run({1, 2, 3}, 2, kFar, false).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace edgefleet

namespace edgefleet {
namespace {

// The first runs on a thread pay its one-time costs: warm-up must happen on the threads that
// will serve, each with its own copy, before the scheduler takes requests.
TEST(BatchScheduler, WarmUpRunsOnEveryWorkerThreadWithItsCopyBeforeTheConstructorReturns) {
  GatedClassifier first, second;
  std::mutex mutex;
  std::map<Classifier*, std::thread::id> warmed;
  BatchScheduler s({&first, &second}, 1, kClasses, {1, 0.0, 8}, [&](Classifier& copy) {
    std::this_thread::sleep_for(20ms);  // a slow warm-up must still be waited for
    std::lock_guard<std::mutex> lock(mutex);
    warmed[&copy] = std::this_thread::get_id();
  });
  std::lock_guard<std::mutex> lock(mutex);
  ASSERT_EQ(warmed.size(), 2u);
  EXPECT_NE(warmed[&first], warmed[&second]);
  for (const auto& [copy, thread] : warmed) EXPECT_NE(thread, std::this_thread::get_id());
}

}  // namespace
}  // namespace edgefleet
