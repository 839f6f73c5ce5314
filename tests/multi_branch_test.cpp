#include <torch/script.h>

#include <cmath>
#include <thread>

#include "edgefleet/multi_branch.h"
#include "test_support.h"

namespace edgefleet {
namespace {

class MultiBranchTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!testing::fashion_mnist_installed()) return;
    dir_ = new testing::TempDir();
    MultiBranchOptions options;
    options.source_model = "cnn_plain";
    options.budgets = {0.25, 0.5, 1.0};
    options.finetune.steps = 20;
    options.train_images = 256;
    options.eval_images = 128;
    options.threads = 1;
    auto build = build_multi_branch(options, dir_->file("mb.pt"));
    ASSERT_TRUE(build.has_value()) << build.status().to_string();
    build_ = new MultiBranchBuild(*build);
  }
  static void TearDownTestSuite() {
    delete build_;
    delete dir_;
    build_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!testing::fashion_mnist_installed()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
    ASSERT_NE(build_, nullptr);
  }
  static std::vector<float> images(int n) {
    std::vector<float> x(static_cast<std::size_t>(n) * 28 * 28);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 7919) % 256) / 255.0f;
    return x;
  }

  static testing::TempDir* dir_;
  static MultiBranchBuild* build_;
};

testing::TempDir* MultiBranchTest::dir_ = nullptr;
MultiBranchBuild* MultiBranchTest::build_ = nullptr;

TEST_F(MultiBranchTest, BranchesMeetTheirBudgetsAndShareOneBase) {
  ASSERT_EQ(build_->branches.size(), 3u);
  const std::int64_t source_macs = build_->branches.back().macs;  // budget 1: the source itself
  for (const auto& b : build_->branches) {
    EXPECT_LE(b.macs, static_cast<std::int64_t>(b.budget * source_macs) + 1) << "branch " << b.index;
    EXPECT_TRUE(b.budget_met);
  }
  EXPECT_LT(build_->branches[0].macs, build_->branches[1].macs);
  std::int64_t separate = 0;
  for (const auto& b : build_->branches) separate += b.params;
  // The base is held once, not once per branch.
  EXPECT_EQ(build_->total_params, separate - 2 * build_->base_params);
}

TEST_F(MultiBranchTest, EachBranchComputesWhatItsStandaloneModelComputes) {
  auto model = MultiBranchModel::load(build_->model_file).value();
  const auto x = images(4);
  for (int b = 0; b < model->branch_count(); ++b) {
    ASSERT_TRUE(model->switch_to(b).is_ok());
    const auto logits = model->infer(x.data(), 4).value();
    auto standalone = torch::jit::load(model->branches()[static_cast<std::size_t>(b)].standalone);
    standalone.eval();
    torch::InferenceMode guard;
    const auto expected = standalone.forward({torch::from_blob(const_cast<float*>(x.data()), {4, 1, 28, 28})}).toTensor();
    ASSERT_EQ(logits.size(), static_cast<std::size_t>(expected.numel()));
    for (std::size_t i = 0; i < logits.size(); ++i) EXPECT_NEAR(logits[i], expected.view(-1)[static_cast<std::int64_t>(i)].item<float>(), 1e-4);
  }
}

TEST_F(MultiBranchTest, TheSavedFileRunsTheActiveBranchInPlainTorchScript) {
  auto module = torch::jit::load(build_->model_file);
  module.eval();
  auto model = MultiBranchModel::load(build_->model_file).value();
  const auto x = images(2);
  module.setattr("active", 0);
  ASSERT_TRUE(model->switch_to(0).is_ok());
  torch::InferenceMode guard;
  const auto plain = module.forward({torch::from_blob(const_cast<float*>(x.data()), {2, 1, 28, 28})}).toTensor();
  const auto ours = model->infer(x.data(), 2).value();
  for (std::size_t i = 0; i < ours.size(); ++i) EXPECT_NEAR(ours[i], plain.view(-1)[static_cast<std::int64_t>(i)].item<float>(), 1e-5);
}

TEST_F(MultiBranchTest, SwitchingUnderLoadFailsNoRequest) {
  SwitchLoadOptions options;
  options.seconds = 0.6;
  options.clients = 2;
  options.switch_every_ms = 5;
  options.reload_repeats = 1;
  auto result = run_switch_load(build_->model_file, images(8), options);
  ASSERT_TRUE(result.has_value()) << result.status().to_string();
  EXPECT_GT(result->requests, 0);
  EXPECT_GT(result->switches, 10);
  EXPECT_EQ(result->failed, 0);
  ASSERT_EQ(result->reload_ms.size(), 3u);
  for (double ms : result->reload_ms) EXPECT_GT(ms, 0.0);
}

TEST_F(MultiBranchTest, BadBranchesAndFilesAreRefused) {
  auto model = MultiBranchModel::load(build_->model_file).value();
  EXPECT_EQ(model->switch_to(3).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(model->switch_to(-1).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(MultiBranchModel::load(dir_->file("missing.pt")).status().code(), StatusCode::kNotFound);
  testing::write_text(dir_->file("junk.pt"), "not a model");
  EXPECT_EQ(MultiBranchModel::load(dir_->file("junk.pt")).status().code(), StatusCode::kCorrupt);
  // A plain zoo model is not a multi-branch one.
  EXPECT_EQ(MultiBranchModel::load(build_->branches[0].standalone).status().code(), StatusCode::kInvalidArgument);
  MultiBranchOptions bad;
  bad.budgets = {1.5};
  EXPECT_EQ(build_multi_branch(bad, dir_->file("bad.pt")).status().code(), StatusCode::kInvalidArgument);
  bad.budgets = {0.5};
  bad.base_layers = 40;  // no layer left for the branches
  EXPECT_EQ(build_multi_branch(bad, dir_->file("bad.pt")).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace edgefleet
