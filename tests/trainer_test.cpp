#include <gtest/gtest.h>

#include <filesystem>

#include "edgefleet/zoo.h"
#include "test_support.h"
#include "zoo/training.h"

namespace edgefleet {
using testing::TempDir;

namespace {
TrainOptions small_run(const TempDir& dir, const std::string& out) {
  testing::write_fashion_mnist_split(dir.file("data"), "train", 256, true);
  testing::write_fashion_mnist_split(dir.file("data"), "t10k", 64, true);
  TrainOptions options;
  options.out_dir = dir.file(out);
  options.fashion_mnist_dir = dir.file("data");
  options.threads = 1;
  options.epochs_override = 2;
  return options;
}

std::vector<torch::Tensor> weights_of(const std::string& path) {
  std::vector<torch::Tensor> out;
  for (const auto& p : torch::jit::load(path).parameters()) out.push_back(p.detach().clone());
  return out;
}
}  // namespace

TEST(Trainer, WritesAModelAndACardWithMeasuredFigures) {
  TempDir dir;
  const ZooEntry entry = builtin_zoo().front();
  auto card = train_zoo_model(entry, small_run(dir, "out")).value();
  EXPECT_TRUE(std::filesystem::exists(dir.file("out/" + entry.name + ".pt")));
  EXPECT_EQ(card.params, (72 + 16) + (1152 + 32) + (4608 + 64) + 330);
  EXPECT_GT(card.macs, 0);
  ASSERT_TRUE(card.accuracy.has_value());
  EXPECT_EQ(card.accuracy->images, 64u);
  EXPECT_EQ(card.sha256.size(), 64u);
  EXPECT_EQ(card.training["epochs"], 2);
  EXPECT_EQ(card.training["history"].size(), 2u);
  EXPECT_FALSE(std::filesystem::exists(dir.file("out/" + entry.name + ".checkpoint")));
}

TEST(Trainer, InterruptedRunResumesToTheSameWeights) {
  TempDir dir;
  const ZooEntry entry = builtin_zoo().front();
  TrainOptions straight = small_run(dir, "straight");
  train_zoo_model(entry, straight).value();

  TrainOptions interrupted = small_run(dir, "interrupted");
  interrupted.on_epoch = [](const TrainProgress& p) {
    if (p.epoch == 1) throw Error(internal_error("simulated kill after epoch 1"));
  };
  EXPECT_FALSE(train_zoo_model(entry, interrupted));
  EXPECT_TRUE(std::filesystem::exists(dir.file("interrupted/" + entry.name + ".checkpoint/state.json")));
  interrupted.on_epoch = nullptr;
  auto resumed = train_zoo_model(entry, interrupted).value();
  EXPECT_EQ(resumed.training["history"].size(), 2u);

  const auto a = weights_of(dir.file("straight/" + entry.name + ".pt"));
  const auto b = weights_of(dir.file("interrupted/" + entry.name + ".pt"));
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(a[i].allclose(b[i], 1e-5, 1e-6)) << "tensor " << i;
}

TEST(Trainer, AHeldOutSetSpreadOverClassOrderedDataCoversEveryClass) {
  // 5 classes of 10 rows each, listed class by class as a photo folder lists them.
  const TrainingData data{torch::arange(50, torch::kFloat).view({50, 1, 1, 1}), torch::arange(50, torch::kInt64).floor_divide(10)};
  const HeldOutSplit split = hold_out_spread(data, 10);
  // Each image (its value is its original row) still carries its own label.
  EXPECT_TRUE(torch::equal(split.all.images.flatten().to(torch::kLong).floor_divide(10), split.all.labels));
  const TrainingData& held = split.held_out;
  const TrainingData& rest = split.rest;
  ASSERT_EQ(held.labels.size(0), 10);
  ASSERT_EQ(rest.labels.size(0), 40);
  EXPECT_TRUE(torch::equal(torch::bincount(held.labels), torch::full({5}, 2, torch::kInt64))) << held.labels;
  // Disjoint and complete: every row once.
  EXPECT_TRUE(torch::equal(std::get<0>(torch::cat({held.images, rest.images}).flatten().sort()), torch::arange(50, torch::kFloat)));
  // No copy of the images: the caller's rows are reordered, and both parts are views of them.
  EXPECT_EQ(split.all.images.data_ptr<float>(), data.images.data_ptr<float>());
  EXPECT_EQ(held.images.data_ptr<float>(), split.all.images.data_ptr<float>());
  EXPECT_EQ(rest.images.data_ptr<float>(), split.all.images.data_ptr<float>() + 10);
}

// A weight followed by a scale s (a converted model's folded batch-norm scale) gets a gradient
// s^2 times larger: SGD's step grows with it, AdamW's first step is the learning rate whatever s.
TEST(Trainer, AdamWsStepOnAWeightDoesNotGrowWithTheScaleAfterIt) {
  auto update = [](FinetuneOptimizer kind, double scale) {
    auto w = torch::ones({4}, torch::kDouble).requires_grad_(true);
    CosineOptimizer optimizer({w}, 1e-3, 0.0, 1000, kind);
    optimizer.step(0, [&] { return (scale * w).pow(2).sum(); });
    return (1.0 - w.detach()).abs().max().item<double>();
  };
  EXPECT_NEAR(update(FinetuneOptimizer::kAdamW, 1.0), 1e-3, 1e-8);
  EXPECT_NEAR(update(FinetuneOptimizer::kAdamW, 100.0), 1e-3, 1e-8);
  EXPECT_NEAR(update(FinetuneOptimizer::kSgd, 100.0) / update(FinetuneOptimizer::kSgd, 1.0), 1e4, 1.0);
}

TEST(Trainer, MissingDatasetNamesThePackage) {
  TempDir dir;
  TrainOptions options;
  options.out_dir = dir.file("out");
  options.fashion_mnist_dir = dir.file("nowhere");
  auto card = train_zoo_model(builtin_zoo().front(), options);
  EXPECT_EQ(card.status().code(), StatusCode::kNotFound);
  EXPECT_NE(card.status().message().find("dataset-fashion-mnist"), std::string::npos);
}

}  // namespace edgefleet
