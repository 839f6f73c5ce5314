#include "edgefleet/instability.h"

#include <gtest/gtest.h>

#include <random>

namespace edgefleet {
namespace {

Prediction top(std::vector<int> classes, float confidence = 0.9f) {
  Prediction p;
  p.classes = std::move(classes);
  p.probabilities.assign(p.classes.size(), 0.0f);
  p.probabilities[0] = confidence;
  return p;
}

// Three environments, five inputs, worked out by hand:
//   input 0 (label 1): 1 1 1        -> stable, all right
//   input 1 (label 2): 2 0 2        -> unstable (right and wrong)
//   input 2 (label 3): 0 4 4        -> all wrong: disagreement but not unstable
//   input 3 (label 0): 0 0 5        -> unstable
//   input 4 (label 2): 7 [7,2] 2    -> unstable top-1; top-3: env0 wrong (only [7]) ...
PredictionTable hand_made() {
  PredictionTable t;
  t.environments = {"ref", "b", "c"};
  t.labels = {1, 2, 3, 0, 2};
  t.predictions = {
      {top({1}), top({1}), top({1})},
      {top({2}, 0.6f), top({0}, 0.4f), top({2}, 0.5f)},
      {top({0}), top({4}), top({4})},
      {top({0}, 0.3f), top({0}, 0.3f), top({5}, 0.3f)},
      {top({7, 2}), top({7, 2}), top({2, 7})},
  };
  return t;
}

TEST(Instability, HandMadeTableGivesTheKnownAnswer) {
  const InstabilityReport r = measure_instability(hand_made()).value();
  EXPECT_EQ(r.inputs, 5u);
  EXPECT_DOUBLE_EQ(r.instability, 3.0 / 5.0);  // inputs 1, 3, 4
  EXPECT_DOUBLE_EQ(r.instability_top_k, 2.0 / 5.0);  // input 4 is right everywhere in the top 3
  EXPECT_DOUBLE_EQ(r.disagreement, 4.0 / 5.0);  // all but input 0
  EXPECT_DOUBLE_EQ(r.accuracy[0], 3.0 / 5.0);   // inputs 0, 1, 3
  EXPECT_DOUBLE_EQ(r.accuracy[1], 2.0 / 5.0);   // inputs 0, 3
  EXPECT_DOUBLE_EQ(r.accuracy[2], 3.0 / 5.0);   // inputs 0, 1, 4
  EXPECT_DOUBLE_EQ(r.accuracy_drop_mean, (0.2 + 0.0) / 2);
  EXPECT_DOUBLE_EQ(r.accuracy_drop_max, 0.2);
  EXPECT_DOUBLE_EQ(r.pairwise_disagreement[0][1], 2.0 / 5.0);  // inputs 1, 2
  EXPECT_DOUBLE_EQ(r.pairwise_disagreement[1][0], 2.0 / 5.0);
  EXPECT_DOUBLE_EQ(r.pairwise_disagreement[0][2], 3.0 / 5.0);  // inputs 2, 3, 4
  EXPECT_NEAR(r.mean_confidence_unstable, ((0.6 + 0.4 + 0.5) / 3 + 0.3 + 0.9) / 3, 1e-6);
  EXPECT_NEAR(r.mean_confidence_stable, 0.9, 1e-6);
  ASSERT_EQ(r.classes, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(r.class_inputs, (std::vector<std::size_t>{1, 1, 2, 1}));
  EXPECT_DOUBLE_EQ(r.class_instability[2], 1.0);
  EXPECT_DOUBLE_EQ(r.class_instability[3], 0.0);
  EXPECT_EQ(r.unstable_inputs.size(), 3u);
}

TEST(Instability, FailedAnswersLeaveTheInputOut) {
  PredictionTable t = hand_made();
  t.predictions[1][2] = Prediction{};
  const InstabilityReport r = measure_instability(t).value();
  EXPECT_EQ(r.inputs, 4u);
  EXPECT_EQ(r.skipped, 1u);
  EXPECT_DOUBLE_EQ(r.instability, 2.0 / 4.0);
}

TEST(Instability, NeverExceedsTheShareOfInputsWithAnyDisagreement) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 200; ++trial) {
    PredictionTable t;
    const int environments = 2 + trial % 5;
    const int classes = 2 + trial % 7;
    for (int e = 0; e < environments; ++e) t.environments.push_back("e" + std::to_string(e));
    for (int i = 0; i < 40; ++i) {
      t.labels.push_back(static_cast<int>(rng() % classes));
      std::vector<Prediction> row;
      for (int e = 0; e < environments; ++e) {
        row.push_back(top({static_cast<int>(rng() % classes), static_cast<int>(rng() % classes)},
                          std::uniform_real_distribution<float>(0, 1)(rng)));
      }
      t.predictions.push_back(row);
    }
    const InstabilityReport r = measure_instability(t).value();
    EXPECT_LE(r.instability, r.disagreement);
    EXPECT_GE(r.instability, 0.0);
    // Top-1 accuracy can only be lower than top-k.
    for (int e = 0; e < environments; ++e) EXPECT_LE(r.accuracy[e], r.accuracy_top_k[e]);
  }
}

TEST(Instability, BadTablesAreRefused) {
  PredictionTable t = hand_made();
  t.environments.resize(1);
  EXPECT_EQ(measure_instability(t).status().code(), StatusCode::kInvalidArgument);
  t = hand_made();
  t.predictions[2].pop_back();
  EXPECT_NE(measure_instability(t).status().message().find("input 2"), std::string::npos);
  InstabilityOptions bad;
  bad.reference = 3;
  EXPECT_EQ(measure_instability(hand_made(), bad).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace edgefleet
