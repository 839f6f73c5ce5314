// Which shard a process takes: from --shard, a Slurm job array or a Kubernetes indexed Job.
#include "edgefleet/shard.h"

#include <gtest/gtest.h>

#include <map>

namespace edgefleet {
namespace {

EnvironmentReader environment(std::map<std::string, std::string> variables) {
  return [variables](const std::string& name) -> std::optional<std::string> {
    auto it = variables.find(name);
    if (it == variables.end()) return std::nullopt;
    return it->second;
  };
}

TEST(Shard, ParsesKOfNAndRefusesAnythingElse) {
  auto s = parse_shard("2/4");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->index, 2);
  EXPECT_EQ(s->count, 4);
  for (const char* bad : {"4/4", "1/0", "-1/4", "1", "a/b", "1/4/2", "", "1/ 4", "99999999999/4"}) {
    EXPECT_EQ(parse_shard(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(Shard, NoSchedulerVariablesMeansNoAssignedShard) {
  auto s = shard_from_environment(environment({{"SLURM_JOB_ID", "7"}}));
  ASSERT_TRUE(s.has_value());
  EXPECT_FALSE(s->has_value());
}

TEST(Shard, ASlurmArrayTaskTakesItsOffsetFromTheArraysFirstIndex) {
  auto s = shard_from_environment(environment(
      {{"SLURM_ARRAY_TASK_ID", "12"}, {"SLURM_ARRAY_TASK_MIN", "10"}, {"SLURM_ARRAY_TASK_MAX", "13"}, {"SLURM_ARRAY_TASK_COUNT", "4"}}));
  ASSERT_TRUE(s.has_value()) << s.status().to_string();
  ASSERT_TRUE(s->has_value());
  EXPECT_EQ((*s)->index, 2);
  EXPECT_EQ((*s)->count, 4);
  EXPECT_EQ((*s)->from, "SLURM_ARRAY_TASK_ID");
}

// A failed index resubmitted alone (--array=2) sees MIN = MAX = 2: with the count given
// once, the array index is the shard index and it runs shard 2 of 4 again.
TEST(Shard, WithTheCountGivenASlurmArrayIndexIsTheShardIndex) {
  const auto resubmitted = environment(
      {{"SLURM_ARRAY_TASK_ID", "2"}, {"SLURM_ARRAY_TASK_MIN", "2"}, {"SLURM_ARRAY_TASK_MAX", "2"}, {"SLURM_ARRAY_TASK_COUNT", "1"}});
  auto s = shard_from_environment(resubmitted, 4);
  ASSERT_TRUE(s.has_value() && s->has_value());
  EXPECT_EQ((*s)->index, 2);
  EXPECT_EQ((*s)->count, 4);
  auto from_env = shard_from_environment(environment({{"SLURM_ARRAY_TASK_ID", "3"}, {"EDGEFLEET_SHARD_COUNT", "4"}}));
  ASSERT_TRUE(from_env.has_value() && from_env->has_value());
  EXPECT_EQ((*from_env)->index, 3);
  EXPECT_EQ(shard_from_environment(environment({{"SLURM_ARRAY_TASK_ID", "4"}}), 4).status().code(), StatusCode::kInvalidArgument);
}

TEST(Shard, SlurmArraysWithGapsOrMissingBoundsAreRefusedNamingTheVariable) {
  // --array=0-6:2 : ids 0,2,4,6, COUNT 4 but MIN..MAX spans 7.
  auto stepped = shard_from_environment(environment(
      {{"SLURM_ARRAY_TASK_ID", "2"}, {"SLURM_ARRAY_TASK_MIN", "0"}, {"SLURM_ARRAY_TASK_MAX", "6"}, {"SLURM_ARRAY_TASK_COUNT", "4"}}));
  EXPECT_EQ(stepped.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(stepped.status().message().find("--shard"), std::string::npos);
  auto unbounded = shard_from_environment(environment({{"SLURM_ARRAY_TASK_ID", "2"}}));
  EXPECT_NE(unbounded.status().message().find("SLURM_ARRAY_TASK_MIN"), std::string::npos);
  auto malformed = shard_from_environment(environment(
      {{"SLURM_ARRAY_TASK_ID", "two"}, {"SLURM_ARRAY_TASK_MIN", "0"}, {"SLURM_ARRAY_TASK_MAX", "3"}}));
  EXPECT_NE(malformed.status().message().find("SLURM_ARRAY_TASK_ID='two'"), std::string::npos);
  auto outside = shard_from_environment(environment(
      {{"SLURM_ARRAY_TASK_ID", "9"}, {"SLURM_ARRAY_TASK_MIN", "0"}, {"SLURM_ARRAY_TASK_MAX", "3"}}));
  EXPECT_EQ(outside.status().code(), StatusCode::kInvalidArgument);
}

TEST(Shard, AKubernetesIndexedJobNeedsItsCountOnceFromTheFlagOrTheEnvironment) {
  auto from_flag = shard_from_environment(environment({{"JOB_COMPLETION_INDEX", "3"}}), 8);
  ASSERT_TRUE(from_flag.has_value() && from_flag->has_value());
  EXPECT_EQ((*from_flag)->index, 3);
  EXPECT_EQ((*from_flag)->count, 8);
  auto from_env = shard_from_environment(environment({{"JOB_COMPLETION_INDEX", "0"}, {"EDGEFLEET_SHARD_COUNT", "2"}}));
  ASSERT_TRUE(from_env.has_value() && from_env->has_value());
  EXPECT_EQ((*from_env)->count, 2);
  auto no_count = shard_from_environment(environment({{"JOB_COMPLETION_INDEX", "0"}}));
  EXPECT_NE(no_count.status().message().find("--shard-count"), std::string::npos);
  auto too_big = shard_from_environment(environment({{"JOB_COMPLETION_INDEX", "5"}}), 4);
  EXPECT_EQ(too_big.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace edgefleet
