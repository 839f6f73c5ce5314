#include "edgefleet/stability_run.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "edgefleet/instability.h"
#include "edgefleet/preprocess.h"
#include "test_support.h"

namespace edgefleet {
namespace {

using testing::TempDir;

std::vector<StabilityEnvironment> three_environments() {
  std::vector<StabilityEnvironment> out;
  for (const char* item : {"png=encode:png", "jpeg50=encode:jpeg,quality=50|decode:turbojpeg",
                           "jpeg50-ifast=encode:jpeg,quality=50|decode:turbojpeg,dct=ifast"}) {
    out.push_back(parse_environment(item).value());
  }
  return out;
}

struct Fixture {
  TempDir dir;
  std::shared_ptr<const Dataset> data;
  ModelCard card;
  std::unique_ptr<Classifier> model;
  Fixture() {
    testing::write_fashion_mnist_split(dir.path(), "t10k", 12, false);
    data = open_fashion_mnist(FashionMnistSplit::kTest, dir.path()).value();
    card = testing::write_tiny_model(dir.path());
    model = load_classifier(card).value();
  }
};

TEST(StabilityRun, RecordsEveryInputInEveryEnvironmentSharingPrefixes) {
  Fixture f;
  auto store = ResultsStore::open(f.dir.file("run.sqlite")).value();
  StabilityRunOptions options;
  options.batch_size = 5;
  const StabilityRunStats stats = run_stability(f.card, *f.data, three_environments(), *store, options).value();
  EXPECT_EQ(stats.inputs, 12u);
  EXPECT_EQ(stats.evaluated, 36u);
  EXPECT_EQ(stats.failures, 0u);
  // encode:jpeg,quality=50 runs once for both JPEG environments.
  EXPECT_EQ(stats.stage_runs_unshared, 12u * 5);
  EXPECT_EQ(stats.stage_runs, 12u * 4);
  const PredictionTable table = store->table().value();
  ASSERT_EQ(table.predictions.size(), 12u);
  // PNG is lossless: its answers are the model's answers on the dataset's own pixels.
  for (std::size_t i = 0; i < 12; ++i) {
    const auto input = preprocess(f.data->load(i).value(), f.model->card().input).value();
    const auto logits = f.model->infer(input.data(), 1).value();
    const int best = static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    EXPECT_EQ(table.predictions[i][0].classes[0], best) << i;
    EXPECT_EQ(table.predictions[i][0].classes.size(), 5u);
    EXPECT_GE(table.predictions[i][0].probabilities[0], table.predictions[i][0].probabilities[1]);
  }
  EXPECT_TRUE(measure_instability(table));
}

// Lossless PNG and the dataset's own pixels give bit-identical model inputs: under the same
// setting they share one inference per input; a different setting (threads=2 in a run of one
// thread) never shares. The store holds what running each environment alone gives.
TEST(StabilityRun, EnvironmentsWithIdenticalInputsShareOneInferenceAndTheStoreIsUnchanged) {
  Fixture f;
  std::vector<StabilityEnvironment> environments;
  for (const char* item : {"raw=", "png=encode:png", "png-again=encode:png|decode:opencv", "png-2-threads=encode:png|infer:threads=2"}) {
    environments.push_back(parse_environment(item).value());
  }
  auto shared_store = ResultsStore::open(f.dir.file("shared.sqlite")).value();
  StabilityRunOptions options;
  options.batch_size = 5;
  options.threads = 1;
  const StabilityRunStats stats = run_stability(f.card, *f.data, environments, *shared_store, options).value();
  EXPECT_EQ(stats.evaluated, 12u * 4);
  // The fixture's pictures cycle over 10 classes: inputs 10 and 11 repeat 0 and 1, in a later
  // batch, so raw and png-2-threads take those two from the first batch's answers.
  EXPECT_EQ(stats.inferences_shared, 12u * 2 + 2u * 2) << "png and png-again take raw's answers; png-2-threads runs its own";
  const PredictionTable shared = shared_store->table().value();
  for (std::size_t e = 0; e < environments.size(); ++e) {
    auto alone_store = ResultsStore::open(f.dir.file("alone" + std::to_string(e) + ".sqlite")).value();
    const auto alone_stats = run_stability(f.card, *f.data, {environments[e]}, *alone_store, options).value();
    EXPECT_EQ(alone_stats.inferences_shared, 2u);  // the two repeated pictures
    const PredictionTable alone = alone_store->table().value();
    for (std::size_t i = 0; i < 12; ++i) {
      const Prediction& a = alone.predictions[i][0];
      const Prediction& b = shared.predictions[i][e];
      ASSERT_EQ(a.classes, b.classes) << environments[e].name << " input " << i;
      for (std::size_t k = 0; k < a.probabilities.size(); ++k) EXPECT_NEAR(a.probabilities[k], b.probabilities[k], 1e-6);
    }
  }
}

// An environment that names the thread count the run uses anyway (threads=2 in a run of 2)
// computes what the run's default computes, so it takes those answers instead of inferring.
TEST(StabilityRun, AnEnvironmentNamingTheRunsOwnThreadCountSharesTheDefaultsInference) {
  Fixture f;
  std::vector<StabilityEnvironment> environments;
  for (const char* item : {"default=", "two=infer:threads=2", "one=infer:threads=1"}) {
    environments.push_back(parse_environment(item).value());
  }
  auto store = ResultsStore::open(f.dir.file("run.sqlite")).value();
  StabilityRunOptions options;
  options.batch_size = 12;
  options.threads = 2;
  const StabilityRunStats stats = run_stability(f.card, *f.data, environments, *store, options).value();
  // One batch: default and one infer all 12 inputs, two takes default's 12 answers.
  EXPECT_EQ(stats.inferences_shared, 12u);
  const PredictionTable table = store->table().value();
  for (std::size_t i = 0; i < 12; ++i) EXPECT_EQ(table.predictions[i][0].classes, table.predictions[i][1].classes) << i;
}

// Settings that differ only in threads run one loaded model (a load is seconds for a
// 224-pixel model); another precision loads its own. The classifier handed out for a setting
// runs at that setting's thread count.
TEST(StabilityRun, SettingsThatDifferOnlyInThreadsShareOneLoadedModel) {
  Fixture f;
  std::vector<StabilityEnvironment> environments;
  for (const char* item : {"one=infer:threads=1", "two=infer:threads=2", "half=infer:precision=fp16,threads=2"}) {
    environments.push_back(parse_environment(item).value());
  }
  const SettingClassifiers classifiers = load_setting_classifiers(f.card, environments, {}).value();
  ASSERT_EQ(classifiers.size(), 3u);
  const InferenceSetting& one = environments[0].environment.inference;
  const InferenceSetting& two = environments[1].environment.inference;
  const InferenceSetting& half = environments[2].environment.inference;
  EXPECT_EQ(classifiers.at(one).get(), classifiers.at(two).get());
  EXPECT_NE(classifiers.at(one).get(), classifiers.at(half).get());
  EXPECT_NE(classifiers.at(half)->engine().find("fp16"), std::string::npos);
  EXPECT_EQ(&classifier_for(classifiers, two), classifiers.at(two).get());
  EXPECT_EQ(at::get_num_threads(), 2);
  EXPECT_EQ(&classifier_for(classifiers, one), classifiers.at(one).get());
  EXPECT_EQ(at::get_num_threads(), 1);
}

// A photo that appears twice in the data, in different batches: its second copy takes the
// first copy's answers (and the store is what an unshared run would write).
TEST(StabilityRun, APhotoSeenInAnEarlierBatchSharesItsInference) {
  TempDir dir;
  for (int i = 0; i < 6; ++i) testing::write_png(dir.file("data/c/" + std::to_string(i) + ".png"), 32, 32, 3, i % 3);
  const ModelCard card = testing::write_tiny_model(dir.path());
  auto data = open_dataset(dir.file("data")).value();
  std::vector<StabilityEnvironment> environments;
  for (const char* item : {"raw=", "png=encode:png"}) environments.push_back(parse_environment(item).value());
  StabilityRunOptions options;
  options.batch_size = 2;  // batches {0, 1}, {2, 3}, {4, 5}: photos 3, 4, 5 repeat 0, 1, 2
  auto store = ResultsStore::open(dir.file("shared.sqlite")).value();
  const StabilityRunStats stats = run_stability(card, *data, environments, *store, options).value();
  EXPECT_EQ(stats.evaluated, 12u);
  EXPECT_EQ(stats.inferences_shared, 6u + 3u) << "png takes raw's answers in every batch; raw's repeats take earlier batches'";
  const PredictionTable shared = store->table().value();
  for (std::size_t e = 0; e < environments.size(); ++e) {
    auto alone_store = ResultsStore::open(dir.file("alone" + std::to_string(e) + ".sqlite")).value();
    StabilityRunOptions one_at_a_time = options;
    one_at_a_time.batch_size = 1;
    ASSERT_TRUE(run_stability(card, *data, {environments[e]}, *alone_store, one_at_a_time));
    const PredictionTable alone = alone_store->table().value();
    for (std::size_t i = 0; i < 6; ++i) {
      ASSERT_EQ(alone.predictions[i][0].classes, shared.predictions[i][e].classes) << environments[e].name << " input " << i;
      for (std::size_t k = 0; k < alone.predictions[i][0].probabilities.size(); ++k) {
        EXPECT_NEAR(alone.predictions[i][0].probabilities[k], shared.predictions[i][e].probabilities[k], 1e-6);
      }
    }
  }
}

TEST(StabilityRun, ResumingComputesOnlyWhatIsMissing) {
  Fixture f;
  const std::string path = f.dir.file("run.sqlite");
  // A run that stopped early: only the first 5 inputs' answers are in the store.
  {
    auto store = ResultsStore::open(path).value();
    StabilityRunOptions partial;
    partial.limit = 5;
    ASSERT_TRUE(run_stability(f.card, *f.data, three_environments(), *store, partial));
  }
  auto store = ResultsStore::open(path).value();
  // Resuming with another input count is another run: refused, nothing lost.
  const auto refused = run_stability(f.card, *f.data, three_environments(), *store);
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  StabilityRunOptions same;
  same.limit = 5;
  const auto again = run_stability(f.card, *f.data, three_environments(), *store, same).value();
  EXPECT_EQ(again.evaluated, 0u);
  EXPECT_EQ(again.already_recorded, 15u);
}

TEST(StabilityRun, AMissingRawDeveloperFailsTheRunBeforeAnyInput) {
  Fixture f;
  auto store = ResultsStore::open(f.dir.file("run.sqlite")).value();
  const std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  ::setenv("PATH", f.dir.file("no-programs-here").c_str(), 1);
  const auto run = run_stability(f.card, *f.data,
                                 {parse_environment("dcraw=camera:dcraw").value(), parse_environment("png=encode:png").value()},
                                 *store);
  ::setenv("PATH", path.c_str(), 1);
  ASSERT_FALSE(run.has_value());
  EXPECT_EQ(run.status().code(), StatusCode::kNotFound);
  EXPECT_NE(run.status().message().find("dcraw is not installed"), std::string::npos) << run.status().message();
  EXPECT_TRUE(store->recorded().value().empty());
}

TEST(StabilityRun, ShardsTogetherEqualOneRun) {
  Fixture f;
  auto whole = ResultsStore::open(f.dir.file("whole.sqlite")).value();
  ASSERT_TRUE(run_stability(f.card, *f.data, three_environments(), *whole));
  for (int shard = 0; shard < 2; ++shard) {
    auto store = ResultsStore::open(f.dir.file("shard" + std::to_string(shard) + ".sqlite")).value();
    StabilityRunOptions options;
    options.shard_index = shard;
    options.shard_count = 2;
    const auto stats = run_stability(f.card, *f.data, three_environments(), *store, options).value();
    EXPECT_EQ(stats.inputs, 6u);
  }
  auto merged = ResultsStore::open(f.dir.file("merged.sqlite")).value();
  ASSERT_TRUE(merged->merge_from(f.dir.file("shard0.sqlite")).is_ok());
  ASSERT_TRUE(merged->merge_from(f.dir.file("shard1.sqlite")).is_ok());
  const auto a = whole->table().value();
  const auto b = merged->table().value();
  for (std::size_t i = 0; i < a.predictions.size(); ++i) {
    for (std::size_t e = 0; e < 3; ++e) EXPECT_EQ(a.predictions[i][e].classes, b.predictions[i][e].classes);
  }
  // Running a finished run again computes nothing.
  const auto again = run_stability(f.card, *f.data, three_environments(), *whole).value();
  EXPECT_EQ(again.evaluated, 0u);
  EXPECT_EQ(again.already_recorded, 36u);
}

TEST(StabilityRun, ACorruptPictureIsRecordedWithItsReasonAndTheRunGoesOn) {
  TempDir dir;
  for (int i = 0; i < 3; ++i) testing::write_png(dir.file("data/a/" + std::to_string(i) + ".png"), 28, 28, 1, i);
  testing::write_text(dir.file("data/b/broken.png"), "\x89PNG\r\n\x1a\n but truncated");
  testing::write_png(dir.file("data/b/ok.png"), 28, 28, 1);
  auto data = open_image_folder(dir.file("data")).value();
  const ModelCard card = testing::write_tiny_model(dir.path());
  auto store = ResultsStore::open(dir.file("run.sqlite")).value();
  std::vector<StabilityEnvironment> environments = {parse_environment("libpng=decode:libpng").value(),
                                                    parse_environment("opencv=decode:opencv").value()};
  const auto stats = run_stability(card, *data, environments, *store).value();
  EXPECT_EQ(stats.failures, 2u);
  const auto failures = store->failures().value();
  ASSERT_EQ(failures.size(), 2u);
  EXPECT_NE(failures[0].error.find("broken.png"), std::string::npos) << failures[0].error;
  const InstabilityReport report = measure_instability(store->table().value()).value();
  EXPECT_EQ(report.inputs, 4u);
  EXPECT_EQ(report.skipped, 1u);
}

TEST(StabilityRun, BadSettingsAreRefused) {
  Fixture f;
  auto store = ResultsStore::open(f.dir.file("run.sqlite")).value();
  StabilityRunOptions options;
  options.shard_index = 2;
  options.shard_count = 2;
  EXPECT_EQ(run_stability(f.card, *f.data, three_environments(), *store, options).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(parse_environment("no-equals-sign").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(parse_environment("x=resize:opencv,fast,3").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace edgefleet
