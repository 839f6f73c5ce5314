#include "edgefleet/dataset.h"

#include <gtest/gtest.h>

#include "test_support.h"

namespace edgefleet {
using testing::TempDir;

TEST(FashionMnist, ReadsGzippedIdxFiles) {
  TempDir dir;
  testing::write_fashion_mnist_split(dir.path(), "t10k", 20, true);
  auto data = open_fashion_mnist(FashionMnistSplit::kTest, dir.path()).value();
  EXPECT_EQ(data->size(), 20u);
  EXPECT_EQ(data->label(13), 3);
  EXPECT_EQ(data->classes().names[9], "Ankle boot");
  auto image = data->load(13).value();
  EXPECT_EQ(image.width, 28);
  EXPECT_EQ(image.channels, 1);
  EXPECT_EQ(image.at(0, 0, 0), 75);
}

TEST(FashionMnist, ReadsPlainIdxFiles) {
  TempDir dir;
  testing::write_fashion_mnist_split(dir.path(), "train", 5, false);
  EXPECT_EQ(open_fashion_mnist(FashionMnistSplit::kTrain, dir.path()).value()->size(), 5u);
}

TEST(FashionMnist, MissingFolderNamesTheDebianPackage) {
  auto data = open_fashion_mnist(FashionMnistSplit::kTest, "/nonexistent/fmnist");
  EXPECT_EQ(data.status().code(), StatusCode::kNotFound);
  EXPECT_NE(data.status().message().find("dataset-fashion-mnist"), std::string::npos);
}

TEST(FashionMnist, BadMagicNumberIsCorrupt) {
  TempDir dir;
  testing::write_fashion_mnist_split(dir.path(), "t10k", 3, false);
  testing::write_bytes(dir.file("t10k-images-idx3-ubyte"), {0, 0, 9, 9, 0, 0, 0, 3, 0, 0, 0, 28, 0, 0, 0, 28});
  auto data = open_fashion_mnist(FashionMnistSplit::kTest, dir.path());
  EXPECT_EQ(data.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(data.status().message().find("bad magic number"), std::string::npos);
}

TEST(FashionMnist, TruncatedImagesAreCorrupt) {
  TempDir dir;
  testing::write_fashion_mnist_split(dir.path(), "t10k", 3, false);
  std::vector<std::uint8_t> header = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2, 3};
  testing::write_bytes(dir.file("t10k-images-idx3-ubyte"), header);
  auto data = open_fashion_mnist(FashionMnistSplit::kTest, dir.path());
  EXPECT_EQ(data.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(data.status().message().find("truncated"), std::string::npos);
}

TEST(ImageFolder, SortedFolderNamesGiveClassIndices) {
  TempDir dir;
  testing::write_png(dir.file("zebra/a.png"), 8, 8, 3);
  testing::write_png(dir.file("ant/b.png"), 8, 8, 3);
  testing::write_png(dir.file("ant/c.png"), 8, 8, 1);
  testing::write_text(dir.file("ant/notes.txt"), "not an image");
  auto data = open_image_folder(dir.path()).value();
  ASSERT_EQ(data->size(), 3u);
  EXPECT_EQ(data->classes().names[0], "ant");
  EXPECT_EQ(data->label(2), 1);
  EXPECT_EQ(data->load(0)->channels, 3);
  EXPECT_EQ(data->load(1)->channels, 1);
}

TEST(ImageFolder, LabelsFileInsideSetsTheOrder) {
  TempDir dir;
  testing::write_png(dir.file("n02/a.png"), 8, 8, 3);
  testing::write_png(dir.file("n01/b.png"), 8, 8, 3);
  testing::write_text(dir.file("labels.txt"), "n00 : unused\nn02 : second\nn01 : third\n");
  auto data = open_image_folder(dir.path()).value();
  EXPECT_EQ(data->classes().size(), 3u);
  EXPECT_EQ(data->label(0), 2);  // n01 is line 3
  EXPECT_EQ(data->label(1), 1);  // n02 is line 2
}

TEST(ImageFolder, LabelsOptionOverridesTheFolderFile) {
  TempDir dir;
  testing::write_png(dir.file("imgs/cat/a.png"), 8, 8, 3);
  testing::write_png(dir.file("imgs/dog/b.png"), 8, 8, 3);
  testing::write_text(dir.file("order.txt"), "dog\ncat\n");
  auto data = open_image_folder(dir.file("imgs"), {dir.file("order.txt")}).value();
  EXPECT_EQ(data->label(0), 1);
}

TEST(ImageFolder, FolderMissingFromLabelsIsAnError) {
  TempDir dir;
  testing::write_png(dir.file("cat/a.png"), 8, 8, 3);
  testing::write_png(dir.file("emu/b.png"), 8, 8, 3);
  testing::write_text(dir.file("labels.txt"), "cat\n");
  auto data = open_image_folder(dir.path());
  EXPECT_EQ(data.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(data.status().message().find("class folder 'emu' is not listed"), std::string::npos);
}

TEST(ImageFolder, MissingPathIsNotFound) {
  auto data = open_image_folder("/nonexistent/images");
  EXPECT_EQ(data.status().to_string(), "not_found: image-folder: no such folder '/nonexistent/images'");
}

TEST(ImageFolder, EmptyClassFolderIsAnError) {
  TempDir dir;
  testing::write_png(dir.file("cat/a.png"), 8, 8, 3);
  testing::write_text(dir.file("dog/readme.txt"), "no images here");
  auto data = open_image_folder(dir.path());
  EXPECT_EQ(data.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(data.status().message().find("dog' holds no image files"), std::string::npos);
}

TEST(ImageFolder, FolderWithoutClassFoldersIsAnError) {
  TempDir dir;
  testing::write_png(dir.file("a.png"), 8, 8, 3);
  EXPECT_NE(open_image_folder(dir.path()).status().message().find("no class sub-folders"), std::string::npos);
}

TEST(ImageFolder, UnreadableImageFailsOnlyThatItem) {
  TempDir dir;
  testing::write_png(dir.file("cat/a.png"), 8, 8, 3);
  testing::write_text(dir.file("cat/b.jpg"), "this is not a jpeg");
  auto data = open_image_folder(dir.path()).value();
  ASSERT_EQ(data->size(), 2u);
  EXPECT_TRUE(data->load(0));
  auto broken = data->load(1);
  EXPECT_EQ(broken.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(broken.status().message().find("b.jpg"), std::string::npos);
}

TEST(OpenDataset, UnknownFashionMnistSplitIsRejected) {
  auto data = open_dataset("fashion-mnist:validation");
  EXPECT_EQ(data.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(data.status().message().find("fashion-mnist:train"), std::string::npos);
}

TEST(Subset, KeepsLabelsOfTheChosenItems) {
  TempDir dir;
  testing::write_fashion_mnist_split(dir.path(), "t10k", 20, true);
  auto data = open_fashion_mnist(FashionMnistSplit::kTest, dir.path()).value();
  auto part = subset(data, {5, 17});
  EXPECT_EQ(part->size(), 2u);
  EXPECT_EQ(part->label(1), 7);
}

}  // namespace edgefleet

namespace edgefleet {
namespace {

TEST(DatasetSplits, EveryItemGoesToExactlyOnePartInterleaved) {
  const auto halves = split_items(7, SplitPolicy::kAlternate);
  ASSERT_EQ(halves.size(), 2u);
  EXPECT_EQ(halves[0], (std::vector<std::size_t>{0, 2, 4, 6}));
  EXPECT_EQ(halves[1], (std::vector<std::size_t>{1, 3, 5}));
  const auto thirds = split_items(11, SplitPolicy::kTwoOneTwo);
  ASSERT_EQ(thirds.size(), 3u);
  EXPECT_EQ(thirds[0], (std::vector<std::size_t>{0, 1, 5, 6, 10}));
  EXPECT_EQ(thirds[1], (std::vector<std::size_t>{2, 7}));
  EXPECT_EQ(thirds[2], (std::vector<std::size_t>{3, 4, 8, 9}));
  EXPECT_EQ(items_after(3, 6), (std::vector<std::size_t>{3, 4, 5}));
  EXPECT_TRUE(items_after(6, 6).empty());
  EXPECT_TRUE(items_after(9, 6).empty());
}

TEST(DatasetSplits, OnlyNamedDatasetsHaveOfficialSplits) {
  EXPECT_TRUE(names_builtin_dataset("fashion-mnist"));
  EXPECT_TRUE(names_builtin_dataset("fashion-mnist:train"));
  EXPECT_FALSE(names_builtin_dataset("photos/fashion-mnist"));
  testing::TempDir dir;
  testing::write_png(dir.file("data/a/0.png"), 8, 8, 1);
  const auto folder = open_official_splits(dir.file("data"));
  ASSERT_TRUE(folder.has_value());
  EXPECT_FALSE(folder->has_value());
  if (!testing::fashion_mnist_installed()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const auto official = open_official_splits("fashion-mnist:test").value();
  ASSERT_TRUE(official.has_value());
  EXPECT_EQ(official->train->size(), 60000u);
  EXPECT_EQ(official->test->size(), 10000u);
}

}  // namespace
}  // namespace edgefleet
