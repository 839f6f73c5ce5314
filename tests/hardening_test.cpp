// Stability training: distortion noise, the grid, and whole hardening runs on a tiny model
// with synthetic Fashion-MNIST-shaped data (no ../shared, no installed dataset needed).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "edgefleet/classifier.h"
#include "edgefleet/distortion.h"
#include "edgefleet/hardening.h"
#include "edgefleet/preprocess.h"
#include "edgefleet/sha256.h"
#include "scripted_nets.h"
#include "test_support.h"

namespace edgefleet {
namespace {
namespace fs = std::filesystem;
using testing::TempDir;

TEST(Distortion, AtStrengthZeroChangesNothing) {
  const Distortion d = draw_distortion(0.0, 42);
  EXPECT_EQ(d.jpeg_quality, 0);
  const Image photo = testing::make_test_photo(40, 30);
  const Image out = apply_distortion(photo, d).value();
  EXPECT_EQ(testing::max_abs_diff(photo, out), 0);
}

TEST(Distortion, IsSeededAndStaysWithinItsRanges) {
  for (std::uint64_t seed = 0; seed < 50; ++seed) {
    const Distortion d = draw_distortion(1.0, seed);
    EXPECT_LE(std::abs(d.brightness), 0.2);
    EXPECT_LE(std::abs(d.contrast - 1), 0.3);
    EXPECT_LE(std::abs(d.saturation - 1), 0.4);
    EXPECT_LE(std::abs(d.hue_degrees), 18);
    EXPECT_GE(d.jpeg_quality, 30);
    EXPECT_LE(d.jpeg_quality, 100);
    const Distortion again = draw_distortion(1.0, seed);
    EXPECT_EQ(d.brightness, again.brightness);
    EXPECT_EQ(d.jpeg_quality, again.jpeg_quality);
  }
  EXPECT_NE(draw_distortion(1.0, 1).brightness, draw_distortion(1.0, 2).brightness);
}

TEST(Distortion, ChangesPixelsButKeepsShapeAndChannels) {
  Distortion d;
  d.hue_degrees = 15;
  d.saturation = 0.6;
  d.brightness = 0.05;
  d.jpeg_quality = 40;
  const Image photo = testing::make_test_photo(48, 32);
  const Image out = apply_distortion(photo, d).value();
  EXPECT_EQ(out.width, 48);
  EXPECT_EQ(out.height, 32);
  EXPECT_EQ(out.channels, 3);
  EXPECT_GT(testing::mean_abs_diff(photo, out), 2.0);

  const Image gray = testing::make_test_photo(28, 28, 1);
  const Image gray_out = apply_distortion(gray, d).value();
  EXPECT_EQ(gray_out.channels, 1);
  EXPECT_GT(testing::mean_abs_diff(gray, gray_out), 1.0);
}

TEST(Distortion, BrightnessShiftsEveryPixelByItsAmount) {
  Image flat = make_image(8, 8, 1, std::vector<std::uint8_t>(64, 100)).value();
  Distortion d;
  d.brightness = 0.1;  // 25.5 levels
  const Image out = apply_distortion(flat, d).value();
  for (auto p : out.pixels) EXPECT_NEAR(p, 125.5, 0.51);
}

TEST(Distortion, RejectsEmptyImagesAndBadQualities) {
  EXPECT_EQ(apply_distortion(Image{}, Distortion{}).status().code(), StatusCode::kInvalidArgument);
  Distortion d;
  d.jpeg_quality = 101;
  EXPECT_EQ(apply_distortion(testing::make_test_photo(8, 8), d).status().code(), StatusCode::kInvalidArgument);
}

TEST(HardenGrid, StartsWithNoNoiseAndCoversEveryCombination) {
  HardenGrid grid;  // defaults: 2x2 gaussian, 2x2 distortion, paired, subsample x 1, for 2 losses x 3 alphas
  auto settings = grid_settings(grid).value();
  EXPECT_EQ(settings.front().noise, NoiseKind::kNone);
  EXPECT_EQ(settings.size(), 1u + 2 * 3 * (2 + 2 + 1 + 1) + 1);
  EXPECT_EQ(std::count_if(settings.begin(), settings.end(), [](const auto& s) { return s.noise == NoiseKind::kMixed; }), 1);
  for (const auto& s : settings) {
    const bool lossless = s.noise == NoiseKind::kNone || s.noise == NoiseKind::kMixed;
    EXPECT_EQ(s.loss == StabilityLoss::kNone, lossless) << harden_setting_to_string(s);
  }
}

TEST(HardenGrid, RejectsEmptyAndOutOfRangeValues) {
  HardenGrid grid;
  grid.kl_alphas.clear();
  EXPECT_EQ(grid_settings(grid).status().code(), StatusCode::kInvalidArgument);
  grid = HardenGrid{};
  grid.strengths = {1.5};
  EXPECT_NE(grid_settings(grid).status().message().find("(0, 1]"), std::string::npos);
  grid = HardenGrid{};
  grid.per_class = {0};
  EXPECT_EQ(grid_settings(grid).status().code(), StatusCode::kInvalidArgument);
  grid = HardenGrid{};
  grid.sigma2s = {-1};
  EXPECT_EQ(grid_settings(grid).status().code(), StatusCode::kInvalidArgument);
}

TEST(HardenGrid, NamesRoundTripAndUnknownOnesAreRefused) {
  for (auto kind : {NoiseKind::kNone, NoiseKind::kGaussian, NoiseKind::kDistortion, NoiseKind::kPaired, NoiseKind::kSubsample,
                    NoiseKind::kMixed}) {
    EXPECT_EQ(parse_noise_kind(noise_kind_name(kind)).value(), kind);
  }
  EXPECT_EQ(parse_stability_loss("kl").value(), StabilityLoss::kKl);
  EXPECT_EQ(parse_stability_loss("embedding").value(), StabilityLoss::kEmbedding);
  EXPECT_NE(parse_noise_kind("salt").status().message().find("gaussian"), std::string::npos);
  EXPECT_FALSE(parse_stability_loss("none"));
  HardenSetting s{NoiseKind::kGaussian, StabilityLoss::kKl, 0.5, 0.04};
  EXPECT_EQ(harden_setting_to_string(s), "gaussian kl alpha=0.5 sigma2=0.04");
}

// A hardening setup on synthetic 28x28 data: two training and two held-out environments.
struct Fixture {
  TempDir dir;
  ModelCard card;
  HardenData data;
  HardenOptions options;

  Fixture() {
    testing::write_fashion_mnist_split(dir.file("fm"), "train", 300, false);
    testing::write_fashion_mnist_split(dir.file("fm"), "t10k", 100, false);
    card = testing::write_tiny_model(dir.file("model"));
    auto train = open_fashion_mnist(FashionMnistSplit::kTrain, dir.file("fm")).value();
    auto test = open_fashion_mnist(FashionMnistSplit::kTest, dir.file("fm")).value();
    std::vector<std::size_t> fit(200), held(100);
    std::iota(fit.begin(), fit.end(), 0);
    std::iota(held.begin(), held.end(), 200);
    data = {subset(train, fit), subset(train, held), test};
    options.train_environments = {parse_environment("jpeg-30", "encode:jpeg,quality=30").value(),
                                  parse_environment("blocky", "resize:opencv,nearest,9x9|resize:opencv,nearest,model").value()};
    options.heldout_environments = {parse_environment("clean", "").value(),
                                    parse_environment("webp-20", "encode:webp,quality=20|infer:precision=fp16").value(),
                                    parse_environment("soft", "resize:opencv,area,14x14|resize:opencv,linear,model").value()};
    options.grid.noises = {NoiseKind::kPaired, NoiseKind::kMixed};
    options.grid.losses = {StabilityLoss::kKl};
    options.grid.kl_alphas = {1.0};
    options.budget.epochs = 3;
    options.budget.batch_size = 32;
    options.budget.learning_rate = 0.1;
    options.budget.train_images = 200;
    options.validation_images = 100;
    options.test_images = 100;
    options.max_accuracy_drop = 1.0;  // the tiny model starts untrained: any setting may be chosen
    options.threads = 1;
    options.work_dir = dir.file("work");
    options.out_model = dir.file("out/hardened.pt");
  }
};

TEST(Harden, WritesALoadableModelWhoseCardRecordsTheChosenSetting) {
  Fixture f;
  f.options.budget.epochs = 6;  // enough that every setting learns the classes, not one flip from the bar
  const HardenResult result = harden_model(f.card, f.data, f.options).value();
  ASSERT_EQ(result.candidates.size(), 3u);  // none, paired kl, mixed
  EXPECT_EQ(result.candidates[0].setting.noise, NoiseKind::kNone);
  EXPECT_EQ(result.table_rows.size(), 3u);
  for (int row : result.table_rows) EXPECT_TRUE(result.candidates[row].evaluated);
  EXPECT_EQ(result.heldout_environments.size(), 3u);

  const ModelCard card = read_card(f.dir.file("out/hardened.json")).value();
  auto classifier = load_classifier(card).value();  // the card's sha256 is checked
  const HardenSetting& chosen = result.candidates[result.chosen].setting;
  EXPECT_EQ(card.training["hardening"]["chosen"]["setting"], harden_setting_to_string(chosen));
  EXPECT_EQ(card.training["hardening"]["grid"].size(), 3u);
  EXPECT_EQ(card.training["base_model"], f.card.name);
  EXPECT_DOUBLE_EQ(card.accuracy->top1, result.candidates[result.chosen].test.top1);
  // Fine-tuning teaches the untrained model the synthetic classes.
  EXPECT_GT(result.candidates[result.chosen].test.top1, result.before.top1 + 0.3);

  // The card's accuracy is what the written model gives on the test split.
  auto test = f.data.test;
  int right = 0;
  for (std::size_t i = 0; i < test->size(); ++i) {
    auto input = preprocess(test->load(i).value(), card.input).value();
    auto logits = classifier->infer(input.data(), 1).value();
    right += std::max_element(logits.begin(), logits.end()) - logits.begin() == test->label(i);
  }
  EXPECT_NEAR(static_cast<double>(right) / test->size(), card.accuracy->top1, 1e-9);

  ASSERT_TRUE(write_hardening_report(result, f.dir.file("report")).is_ok());
  for (const char* name : {"result.json", "table.md", "report.html"}) EXPECT_TRUE(fs::exists(f.dir.file("report/") + name));
  const std::string table = hardening_table_markdown(result);
  EXPECT_NE(table.find("no noise"), std::string::npos);
  EXPECT_NE(table.find("paired"), std::string::npos);
  EXPECT_NE(table.find("(chosen)"), std::string::npos);
}

TEST(Harden, TheSameCommandTwiceGivesTheSameCardMetrics) {
  Fixture a, b;
  const HardenResult first = harden_model(a.card, a.data, a.options).value();
  const HardenResult second = harden_model(b.card, b.data, b.options).value();
  ASSERT_EQ(first.candidates.size(), second.candidates.size());
  for (std::size_t c = 0; c < first.candidates.size(); ++c) {
    EXPECT_EQ(first.candidates[c].validation_top1, second.candidates[c].validation_top1);
    EXPECT_EQ(first.candidates[c].validation_instability, second.candidates[c].validation_instability);
  }
  EXPECT_EQ(first.card.accuracy->top1, second.card.accuracy->top1);
  EXPECT_EQ(first.card.training["hardening"], second.card.training["hardening"]);
}

TEST(Harden, ARerunKeepsTheFinishedCandidates) {
  Fixture f;
  const HardenResult first = harden_model(f.card, f.data, f.options).value();
  const HardenResult again = harden_model(f.card, f.data, f.options).value();
  for (std::size_t c = 0; c < again.candidates.size(); ++c) {
    EXPECT_TRUE(again.candidates[c].resumed);
    EXPECT_EQ(again.candidates[c].validation_instability, first.candidates[c].validation_instability);
  }
  // A different budget is a different run: nothing is reused.
  f.options.budget.seed = 2;
  const HardenResult reseeded = harden_model(f.card, f.data, f.options).value();
  EXPECT_FALSE(reseeded.candidates[0].resumed);
}

TEST(Harden, AnotherOptimizerIsAnotherRunAndTheCardNamesIt) {
  Fixture f;
  f.options.grid.noises = {NoiseKind::kPaired};
  const HardenResult sgd = harden_model(f.card, f.data, f.options).value();
  EXPECT_EQ(sgd.card.training["hardening"]["fine_tuning"]["optimizer"].get<std::string>().rfind("SGD", 0), 0u);
  f.options.budget.optimizer = FinetuneOptimizer::kAdamW;
  f.options.budget.learning_rate = 0.001;
  const HardenResult adamw = harden_model(f.card, f.data, f.options).value();
  for (const auto& candidate : adamw.candidates) EXPECT_FALSE(candidate.resumed);
  EXPECT_EQ(adamw.card.training["hardening"]["fine_tuning"]["optimizer"].get<std::string>().rfind("AdamW", 0), 0u);
}

TEST(Harden, EmbeddingLossAddsADenseLayerToModelsWithoutOne) {
  Fixture f;
  // A model with a forward method only (like the ImageNet TorchScript files).
  torch::jit::Module plain("plain");
  plain.register_parameter("w", torch::randn({10, 784}) * 0.01, false);
  plain.register_parameter("b", torch::zeros({10}), false);
  plain.define("def forward(self, x):\n    return torch.linear(torch.flatten(x, 1), self.w, self.b)\n");
  plain.save(f.dir.file("model/plain.pt"));
  ModelCard card = f.card;
  card.name = "plain";
  card.file = "plain.pt";
  card.sha256 = sha256_file(f.dir.file("model/plain.pt")).value();
  card.params = 7850;
  ASSERT_TRUE(write_card(card, f.dir.file("model/plain.json")).is_ok());
  card = read_card(f.dir.file("model/plain.json")).value();
  f.options.grid.noises = {NoiseKind::kGaussian};
  f.options.grid.losses = {StabilityLoss::kEmbedding};
  f.options.grid.embedding_alphas = {0.1};
  f.options.grid.sigma2s = {0.01};
  f.options.max_accuracy_drop = 0;
  f.options.grid.noises = {NoiseKind::kGaussian};
  const HardenResult result = harden_model(card, f.data, f.options).value();
  const CandidateResult& embedding = result.candidates.at(1);
  const ModelCard written = read_card(fs::path(embedding.model_file).replace_extension(".json").string()).value();
  EXPECT_NE(written.architecture.find("dense layer"), std::string::npos);
  EXPECT_EQ(written.params, 7850 + 110);
  auto module = torch::jit::load(embedding.model_file);
  EXPECT_TRUE(module.find_method("features").has_value());
  EXPECT_TRUE(load_classifier(written));
}

TEST(HardeningSplits, ASeparateTestFolderIsMeasuredAloneAndTheDataFolderOnlyTrainsAndValidates) {
  TempDir dir;
  for (int i = 0; i < 10; ++i) testing::write_png(dir.file("train/c" + std::to_string(i % 2) + "/" + std::to_string(i) + ".png"), 8, 8, 3);
  for (int i = 0; i < 3; ++i) testing::write_png(dir.file("val/c" + std::to_string(i % 2) + "/" + std::to_string(i) + ".png"), 8, 8, 3);
  const HardenData data = hardening_splits(dir.file("train"), dir.file("val")).value();
  EXPECT_EQ(data.train->size(), 8u);       // items i % 5 != 2 of the data folder
  EXPECT_EQ(data.validation->size(), 2u);  // items 2 and 7
  EXPECT_EQ(data.test->size(), 3u);        // the whole test folder
  const HardenData alone = hardening_splits(dir.file("train")).value();
  EXPECT_EQ(alone.train->size() + alone.validation->size() + alone.test->size(), 10u);
  EXPECT_EQ(hardening_splits("fashion-mnist", dir.file("val")).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(hardening_splits(dir.file("train"), dir.file("missing")).status().code(), StatusCode::kNotFound);
}

// A pretrained model whose batch norms' running statistics are not those of the new data (an
// ImageNet model fine-tuned on a few classes): frozen, they come out exactly as they went in.
TEST(Harden, FrozenBatchNormFineTunesTheWeightsButKeepsTheRunningStatistics) {
  Fixture f;
  torch::jit::Module net = module("BnNet");
  net.register_parameter("w", torch::randn({4, 1, 3, 3}) * 0.3, false);
  net.register_module("bn", batch_norm(4, 7));
  net.register_parameter("fc_w", torch::randn({10, 4}) * 0.3, false);
  net.register_parameter("fc_b", torch::zeros({10}), false);
  net.define(R"(
def forward(self, x):
  a = torch.relu(self.bn.forward(torch.conv2d(x, self.w, None, [1, 1], [1, 1], [1, 1], 1)))
  return torch.linear(torch.mean(a, [2, 3]), self.fc_w, self.fc_b)
)");
  net.eval();
  net.save(f.dir.file("model/bn.pt"));
  ModelCard card = f.card;
  card.name = "bn";
  card.file = "bn.pt";
  card.sha256 = sha256_file(f.dir.file("model/bn.pt")).value();
  ASSERT_TRUE(write_card(card, f.dir.file("model/bn.json")).is_ok());
  card = read_card(f.dir.file("model/bn.json")).value();
  f.options.grid.noises = {NoiseKind::kMixed};
  f.options.budget.epochs = 1;
  auto running_mean_of = [](const std::string& pt) { return torch::jit::load(pt).attr("bn").toModule().attr("running_mean").toTensor(); };
  const torch::Tensor before = running_mean_of(card.model_path());

  f.options.budget.frozen_batch_norm = true;
  const HardenResult frozen = harden_model(card, f.data, f.options).value();
  for (const auto& c : frozen.candidates) {
    EXPECT_TRUE(torch::equal(running_mean_of(c.model_file), before)) << harden_setting_to_string(c.setting);
    EXPECT_FALSE(torch::equal(torch::jit::load(c.model_file).attr("fc_w").toTensor(), net.attr("fc_w").toTensor()));
  }
  EXPECT_EQ(frozen.card.training["hardening"]["fine_tuning"]["frozen_batch_norm"], true);

  f.options.budget.frozen_batch_norm = false;  // a different fingerprint: trained again, statistics move
  const HardenResult moving = harden_model(card, f.data, f.options).value();
  EXPECT_FALSE(moving.candidates[0].resumed);
  EXPECT_FALSE(torch::equal(running_mean_of(moving.candidates[0].model_file), before));
}

// Distilled from the base on the clean picture, fine-tuning without noise starts at its own
// optimum: the model and its answers stay the base's. With labels it learns the classes; with a
// stability loss the distilled model moves too.
TEST(Harden, DistilledFineTuningWithoutNoiseKeepsTheBaseModelsAnswers) {
  Fixture f;
  f.options.grid.noises = {NoiseKind::kPaired};
  f.options.budget.frozen_batch_norm = true;  // the student's batch norms as the teacher's
  f.options.budget.distill = true;
  const HardenResult distilled = harden_model(f.card, f.data, f.options).value();
  const CandidateResult& kept = distilled.candidates.at(0);
  ASSERT_EQ(kept.setting.noise, NoiseKind::kNone);
  auto max_weight_change = [&](const std::string& pt) {
    auto base = torch::jit::load(f.card.model_path());
    auto tuned = torch::jit::load(pt);
    double change = 0;
    auto b = base.named_parameters().begin();
    for (const auto& p : tuned.named_parameters()) {
      change = std::max(change, (p.value - (*b).value).abs().max().item<double>());
      ++b;
    }
    return change;
  };
  const double kept_change = max_weight_change(kept.model_file);
  EXPECT_LT(kept_change, 1e-6);
  EXPECT_NEAR(kept.test.top1, distilled.before.top1, 1e-9);
  EXPECT_NEAR(kept.test.heldout_instability, distilled.before.heldout_instability, 1e-9);
  EXPECT_GT(max_weight_change(distilled.candidates.at(1).model_file), 100 * kept_change + 1e-5);  // paired KL
  EXPECT_EQ(distilled.card.training["hardening"]["fine_tuning"]["task_loss"], "distillation from the base");

  f.options.budget.distill = false;  // a different fingerprint: trained again, on the labels
  const HardenResult labelled = harden_model(f.card, f.data, f.options).value();
  EXPECT_FALSE(labelled.candidates[0].resumed);
  EXPECT_GT(max_weight_change(labelled.candidates[0].model_file), 1e-2);
  EXPECT_GT(labelled.candidates[0].test.top1, distilled.before.top1 + 0.1);
}

TEST(Harden, RefusesSetupsThatCannotMeasureAnything) {
  Fixture f;
  HardenOptions options = f.options;
  options.train_environments.clear();
  EXPECT_NE(harden_model(f.card, f.data, options).status().message().find("training environment"), std::string::npos);
  options = f.options;
  options.heldout_environments.resize(1);
  EXPECT_NE(harden_model(f.card, f.data, options).status().message().find("two held-out"), std::string::npos);
  options = f.options;
  options.heldout_environments.push_back(options.train_environments[0]);
  EXPECT_NE(harden_model(f.card, f.data, options).status().message().find("both trained on and held out"), std::string::npos);
  options = f.options;
  options.budget.epochs = 0;
  EXPECT_EQ(harden_model(f.card, f.data, options).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(f.dir.file("out/hardened.pt")));
}

}  // namespace
}  // namespace edgefleet
