#include "edgefleet/labels.h"

#include <gtest/gtest.h>

#include "test_support.h"

namespace edgefleet {

TEST(Labels, ParsesWnidColonNameLines) {
  auto list = parse_labels("n01440764 : tench, Tinca tinca\nn01443537 : goldfish\n", "labels.txt").value();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list.keys[1], "n01443537");
  EXPECT_EQ(list.names[0], "tench, Tinca tinca");
}

TEST(Labels, ParsesWnidSpaceNameLines) {
  auto list = parse_labels("n01440764 tench\nn01443537 goldfish fish\n", "labels.txt").value();
  EXPECT_EQ(list.keys[0], "n01440764");
  EXPECT_EQ(list.names[1], "goldfish fish");
}

TEST(Labels, PlainNamesWithSpacesAreOneClass) {
  auto list = parse_labels("T-shirt top\nAnkle boot\n\n", "labels.txt").value();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list.keys[1], "Ankle boot");
  EXPECT_EQ(list.index_of("Ankle boot"), 1);
  EXPECT_EQ(list.index_of("Sandal"), std::nullopt);
}

TEST(Labels, FolderMatchesKeyOrName) {
  auto list = parse_labels("n01440764 : tench\n", "labels.txt").value();
  EXPECT_EQ(list.index_of("n01440764"), 0);
  EXPECT_EQ(list.index_of("tench"), 0);
}

TEST(Labels, DuplicateKeyIsRejectedWithLineNumber) {
  auto list = parse_labels("cat\ndog\ncat\n", "my-labels.txt");
  ASSERT_FALSE(list);
  EXPECT_EQ(list.status().message(), "my-labels.txt:3: class 'cat' is listed twice");
}

TEST(Labels, EmptyFileIsRejected) {
  EXPECT_EQ(parse_labels("\n\n", "l.txt").status().code(), StatusCode::kInvalidArgument);
}

TEST(Labels, MissingFileIsNotFound) {
  auto list = read_labels_file("/nonexistent/labels.txt");
  EXPECT_EQ(list.status().code(), StatusCode::kNotFound);
  EXPECT_NE(list.status().message().find("/nonexistent/labels.txt"), std::string::npos);
}

}  // namespace edgefleet
