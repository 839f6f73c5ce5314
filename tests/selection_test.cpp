#include "edgefleet/selection.h"

#include <gtest/gtest.h>

#include <map>

#include "edgefleet/simulator.h"

namespace edgefleet {
namespace {

// A: fast and weak; B: middle; C: slow and accurate; D: C's latency with lower accuracy.
std::vector<VariantProfile> hand_zoo() {
  return {{"A", 0.5, 10, 1}, {"B", 0.7, 20, 2}, {"C", 0.9, 50, 5}, {"D", 0.4, 50, 5}};
}

std::map<int, int> choices(const std::string& policy, const std::vector<VariantProfile>& zoo, SelectionRequest request,
                           int draws = 20000) {
  auto p = make_policy(policy).value();
  Rng rng(3);
  std::map<int, int> counts;
  for (int i = 0; i < draws; ++i) counts[p->select(zoo, request, rng).variant]++;
  return counts;
}

}  // namespace

TEST(SelectionStageOne, PicksTheMostAccurateThatFitsWithOneSigma) {
  EXPECT_EQ(base_variant(hand_zoo(), 30), 1);   // A (11) and B (22) fit, B is more accurate
  EXPECT_EQ(base_variant(hand_zoo(), 22), 0);   // B needs 20 + 2 < 22: strict, so only A
  EXPECT_EQ(base_variant(hand_zoo(), 100), 2);  // C beats D on accuracy
}

TEST(ChooseVariant, WithoutAnSlaTheMostAccurateRunsAndFits) {
  auto policy = make_policy("static-latency").value();
  Rng rng(1);
  const Selection s = choose_variant(*policy, hand_zoo(), {0.0, 5.0}, rng);
  EXPECT_EQ(s.variant, 2);  // C, not the policy's fastest
  EXPECT_TRUE(s.fits_budget);
}

TEST(ChooseVariant, APinnedVariantRunsAndIsJudgedByTheBudget) {
  auto policy = make_policy("mdinference").value();
  Rng rng(1);
  const std::vector<VariantProfile> one = {hand_zoo()[1]};  // B: 20 + 2 ms
  EXPECT_TRUE(choose_variant(*policy, one, {30.0, 5.0}, rng).fits_budget);
  EXPECT_FALSE(choose_variant(*policy, one, {30.0, 8.0}, rng).fits_budget);  // 22 < 22 fails
  EXPECT_EQ(choose_variant(*policy, one, {30.0, 8.0}, rng).variant, 0);
}

TEST(ChooseVariant, WithAnSlaAndSeveralVariantsThePolicyChooses) {
  auto policy = make_policy("static-latency").value();
  Rng rng(1);
  EXPECT_EQ(choose_variant(*policy, hand_zoo(), {100.0, 5.0}, rng).variant, 0);
}

TEST(SelectionStageOne, FallsBackToTheFastestWhenNothingFits) {
  EXPECT_EQ(base_variant(hand_zoo(), 5), 0);
  EXPECT_EQ(base_variant(hand_zoo(), -40), 0);  // network time above the SLA
}

TEST(SelectionStageTwo, ExplorationSetIsWithinOneSigmaOfTheBase) {
  EXPECT_EQ(exploration_set(hand_zoo(), 2), (std::vector<int>{2, 3}));  // mu in [45, 55]
  EXPECT_EQ(exploration_set(hand_zoo(), 1), (std::vector<int>{1}));     // mu in [18, 22]
}

TEST(SelectionStageThree, UtilityFollowsEquationThree) {
  // U(C) at budget 100 = 0.9 * (100 - 55) / |100 - 50| = 0.81
  EXPECT_NEAR(utility(hand_zoo()[2], 100), 0.81, 1e-12);
  EXPECT_NEAR(utility(hand_zoo()[3], 100), 0.36, 1e-12);
  EXPECT_EQ(utility(hand_zoo()[2], 52), 0.0);  // expected to overrun: no probability
  EXPECT_EQ(utility(hand_zoo()[2], 50), 0.0);  // |T_budget - mu| = 0
}

TEST(MdInference, DrawsInProportionToUtility) {
  const auto counts = choices("mdinference", hand_zoo(), {100, 0});
  const double share_c = counts.at(2) / 20000.0;
  EXPECT_NEAR(share_c, 0.81 / (0.81 + 0.36), 0.015);
  EXPECT_EQ(counts.count(0) + counts.count(1), 0u);  // outside M_E: never
}

TEST(MdInference, KeepsTheFastestWhenNoModelFits) {
  auto p = make_policy("mdinference").value();
  Rng rng(1);
  const Selection s = p->select(hand_zoo(), {100, 95}, rng);  // budget 5
  EXPECT_EQ(s.base, 0);
  EXPECT_EQ(s.variant, 0);
  EXPECT_FALSE(s.fits_budget);
}

// The paper's NasNet Fictional (same latency as NasNet Large, 50% accuracy): MDInference
// picks it with probability A(F) / (A(F) + A(L)) once both are in M_E; related accurate never.
TEST(MdInference, NasNetFictionalIsPickedLessOftenAndNeverByRelatedAccurate) {
  const auto zoo = read_zoo_profile(std::string(EDGEFLEET_SOURCE_DIR) + "/data/zoos/paper-table3-fictional.json").value();
  const int large = 10, fictional = 11;
  ASSERT_EQ(zoo.variants[fictional].name, "NasNet Fictional");
  const auto md = choices("mdinference", zoo.variants, {250, 50});
  EXPECT_LT(md.at(fictional), md.at(large));
  EXPECT_NEAR(md.at(fictional) / 20000.0, 0.5 / (0.5 + 0.826), 0.015);
  const auto accurate = choices("related-accurate", zoo.variants, {250, 50});
  EXPECT_EQ(accurate.count(fictional), 0u);
  const auto related_random = choices("related-random", zoo.variants, {250, 50});
  EXPECT_NEAR(related_random.at(fictional) / 20000.0, 0.5, 0.015);
}

TEST(StaticPolicies, IgnoreTheBudgetOrTheNetwork) {
  EXPECT_EQ(choices("static-accuracy", hand_zoo(), {1, 0}, 10).begin()->first, 2);
  EXPECT_EQ(choices("static-latency", hand_zoo(), {1000, 0}, 10).begin()->first, 0);
  // Static greedy plans against the SLA alone: with 80 ms of network it still picks C.
  EXPECT_EQ(choices("static-greedy", hand_zoo(), {100, 80}, 10).begin()->first, 2);
  EXPECT_EQ(choices("mdinference", hand_zoo(), {100, 80}, 10).begin()->first, 0);
}

TEST(RandomPolicy, CoversEveryVariant) { EXPECT_EQ(choices("random", hand_zoo(), {100, 0}).size(), 4u); }

TEST(MakePolicy, UnknownNameListsTheChoices) {
  auto p = make_policy("greedy");
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(p.status().message().find("mdinference, static-greedy"), std::string::npos);
}

TEST(Selection, SameSeedSameChoices) {
  auto p = make_policy("mdinference").value();
  Rng a(9), b(9);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(p->select(hand_zoo(), {100, 0}, a).variant, p->select(hand_zoo(), {100, 0}, b).variant);
}

}  // namespace edgefleet
