// The server's variant registry and per-variant pool, without HTTP.
#include "serve/variant_registry.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "test_support.h"

namespace edgefleet {
namespace {

class VariantRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const ModelCard a = testing::write_tiny_model(dir_.file("models"), "a");
    const ModelCard b = testing::write_tiny_model(dir_.file("models"), "b");
    ASSERT_TRUE(add_to_repository(dir_.file("repo"), "task", a).has_value());
    ASSERT_TRUE(add_to_repository(dir_.file("repo"), "task", b).has_value());
    options_.repository = dir_.file("repo");
    options_.instances_per_variant = 1;
    options_.warmup_runs = 4;  // the tracker skips the first two
  }
  testing::TempDir dir_;
  RegistryOptions options_;
};

TEST_F(VariantRegistryTest, LoadsUnloadsAndFollowsTheRepositoryFolder) {
  VariantRegistry registry(options_);
  ASSERT_TRUE(registry.sync().is_ok());
  const auto before = registry.snapshot();
  EXPECT_EQ(before->variants.size(), 2u);
  ASSERT_EQ(before->tasks.at("task").size(), 2u);
  EXPECT_GT(before->variants.at("a")->profile().mean_ms, 0.0);  // warm-up seeded the profile

  ASSERT_TRUE(registry.unload("a").is_ok());
  EXPECT_EQ(registry.snapshot()->variants.size(), 1u);
  EXPECT_EQ(before->variants.size(), 2u);  // a snapshot taken earlier keeps its variants
  EXPECT_EQ(registry.unload("a").code(), StatusCode::kNotFound);

  ASSERT_TRUE(registry.load("a").is_ok());
  std::filesystem::remove_all(dir_.file("repo/task/b"));
  ASSERT_TRUE(registry.sync().is_ok());
  const auto after = registry.snapshot();
  EXPECT_EQ(after->variants.size(), 1u);
  EXPECT_TRUE(after->variants.count("a"));
  EXPECT_EQ(registry.load("nothing").code(), StatusCode::kNotFound);
}

TEST_F(VariantRegistryTest, AVariantRunsThroughItsBatcherSeededByTheWarmUp) {
  options_.batching.max_batch = 4;
  VariantRegistry registry(options_);
  ASSERT_TRUE(registry.sync().is_ok());
  auto variant = registry.snapshot()->variants.at("a");
  EXPECT_GT(variant->scheduler().batch_ms(1), 0.0);  // warm-up seeded batch 1 and the largest batch
  EXPECT_GT(variant->scheduler().batch_ms(4), 0.0);
  const std::int64_t item = variant->card.input.channels() * variant->card.input.height * variant->card.input.width;
  auto run = variant->run(std::vector<float>(static_cast<std::size_t>(2 * item), 0.f), 2, SteadyTime::max(), false);
  ASSERT_TRUE(run.has_value()) << run.status().to_string();
  EXPECT_EQ(run->logits.size(), 20u);
  EXPECT_EQ(run->batch_items, 2);
}

}  // namespace
}  // namespace edgefleet
