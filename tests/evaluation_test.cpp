#include "edgefleet/evaluation.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_support.h"

namespace edgefleet {
using testing::TempDir;

TEST(Evaluate, CountsEveryImageAndAgreesWithItsOwnTopK) {
  TempDir dir;
  testing::write_fashion_mnist_split(dir.file("data"), "t10k", 50, true);
  auto data = open_fashion_mnist(FashionMnistSplit::kTest, dir.file("data")).value();
  auto model = load_classifier(testing::write_tiny_model(dir.path())).value();
  EvalOptions options;
  options.batch_size = 16;  // 50 = 3 full batches + a partial one
  std::size_t last_done = 0;
  options.on_progress = [&](std::size_t done, std::size_t) { last_done = done; };
  auto report = evaluate(*model, *data, options).value();
  EXPECT_EQ(report.images, 50u);
  EXPECT_EQ(last_done, 50u);
  EXPECT_LE(report.top1, report.top5);
  std::size_t per_class_images = 0, per_class_correct = 0;
  for (const auto& c : report.per_class) {
    per_class_images += c.images;
    per_class_correct += c.correct;
  }
  EXPECT_EQ(per_class_images, 50u);
  EXPECT_DOUBLE_EQ(report.top1, per_class_correct / 50.0);
  EXPECT_GT(report.images_per_second, 0.0);
}

TEST(Evaluate, SkipsUnreadableImagesAndReportsThem) {
  TempDir dir;
  for (int i = 0; i < 3; ++i) testing::write_png(dir.file("data/a/" + std::to_string(i) + ".png"), 28, 28, 1, i);
  testing::write_text(dir.file("data/b/broken.png"), "\x89PNG but truncated");
  testing::write_png(dir.file("data/b/ok.png"), 28, 28, 3);
  auto data = open_image_folder(dir.file("data")).value();
  auto model = load_classifier(testing::write_tiny_model(dir.path())).value();
  auto report = evaluate(*model, *data).value();
  EXPECT_EQ(report.images, 4u);
  ASSERT_EQ(report.skipped.size(), 1u);
  EXPECT_NE(report.skipped[0].item.find("broken.png"), std::string::npos);
  EXPECT_NE(report.skipped[0].reason.find("not an image"), std::string::npos);
}

TEST(Evaluate, DatasetWithMoreClassesThanTheModelIsRejected) {
  TempDir dir;
  std::string labels;
  for (int i = 0; i < 12; ++i) labels += "class" + std::to_string(i) + "\n";
  testing::write_text(dir.file("data/labels.txt"), labels);
  testing::write_png(dir.file("data/class0/a.png"), 28, 28, 1);
  auto data = open_image_folder(dir.file("data")).value();
  auto model = load_classifier(testing::write_tiny_model(dir.path())).value();
  auto report = evaluate(*model, *data);
  EXPECT_EQ(report.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(report.status().message().find("has 12 classes but model 'tiny' outputs 10"), std::string::npos);
}

TEST(EvalReportJson, HasTheDocumentedFields) {
  EvalReport report;
  report.images = 3;
  report.top1 = 0.5;
  const auto j = eval_report_to_json(report);
  for (const char* key : {"images", "top1", "top5", "images_per_second", "per_class", "skipped"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
}

}  // namespace edgefleet
