#include "edgefleet/latency_tracker.h"

#include <gtest/gtest.h>

namespace edgefleet {

TEST(LatencyTracker, IgnoresWarmupRuns) {
  LatencyTracker tracker({3, 0.0, 10.0, 5});
  EXPECT_FALSE(tracker.add(500));
  EXPECT_FALSE(tracker.add(400));
  EXPECT_FALSE(tracker.add(300));
  EXPECT_TRUE(tracker.add(10));
  EXPECT_EQ(tracker.accepted(), 1);
  EXPECT_DOUBLE_EQ(tracker.mean_ms(), 10.0);
}

TEST(LatencyTracker, CumulativeModeIsThePlainMeanAndSampleStd) {
  LatencyTracker tracker({0, 0.0, 10.0, 5});
  for (double v : {2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0}) tracker.add(v);
  EXPECT_DOUBLE_EQ(tracker.mean_ms(), 5.0);
  EXPECT_NEAR(tracker.std_ms(), std::sqrt(32.0 / 7.0), 1e-12);
}

TEST(LatencyTracker, EwmaFollowsTheLatestRunsWithHalfWeight) {
  LatencyTracker tracker({0, 0.5, 10.0, 5});
  tracker.add(10);
  tracker.add(20);  // 10 + 0.5 * 10
  EXPECT_DOUBLE_EQ(tracker.mean_ms(), 15.0);
  tracker.add(15);
  EXPECT_DOUBLE_EQ(tracker.mean_ms(), 15.0);
}

TEST(LatencyTracker, DropsColdRunsFarFromTheMean) {
  LatencyTracker tracker({0, 0.0, 10.0, 5});
  for (int i = 0; i < 10; ++i) tracker.add(10.0 + (i % 2));
  EXPECT_FALSE(tracker.add(1000.0));
  EXPECT_EQ(tracker.dropped(), 1);
  EXPECT_LT(tracker.mean_ms(), 11.0);
}

}  // namespace edgefleet
