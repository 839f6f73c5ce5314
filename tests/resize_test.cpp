#include <gtest/gtest.h>

#include "edgefleet/resize.h"
#include "test_support.h"

namespace edgefleet {
namespace {

using testing::make_test_photo;
using testing::max_abs_diff;
using testing::mean_abs_diff;

Image resized(const Image& image, ResizeLibrary library, const std::string& method, TargetSize size,
              bool antialias = false) {
  ResizeOptions options;
  options.library = library;
  options.method = method;
  options.size = size;
  options.antialias = antialias;
  return resize_image(image, options).value();
}

TargetSize exact(int w, int h) { return TargetSize{0, w, h}; }

TEST(Resize, EveryLibraryAndMethodGivesTheRequestedSize) {
  const Image photo = make_test_photo(97, 61);
  for (ResizeLibrary library : {ResizeLibrary::kOpenCv, ResizeLibrary::kVips, ResizeLibrary::kMagick, ResizeLibrary::kTorch}) {
    for (const std::string& method : resize_methods(library)) {
      for (TargetSize size : {exact(40, 30), exact(150, 90), TargetSize{32, 0, 0}}) {
        const Image out = resized(photo, library, method, size);
        const int want_w = size.shorter_side ? 50 : size.width;  // 97x61 with shorter side 32 -> 50x32
        const int want_h = size.shorter_side ? 32 : size.height;
        EXPECT_EQ(out.width, want_w) << resize_library_name(library) << " " << method;
        EXPECT_EQ(out.height, want_h) << resize_library_name(library) << " " << method;
        EXPECT_EQ(out.channels, 3);
        // Every filter keeps the picture: the mean colour barely moves.
        const Image back = resized(out, ResizeLibrary::kOpenCv, "area", exact(10, 10));
        EXPECT_LT(mean_abs_diff(back, resized(photo, ResizeLibrary::kOpenCv, "area", exact(10, 10))), 12.0)
            << resize_library_name(library) << " " << method;
      }
    }
  }
}

TEST(Resize, LibrariesAndFiltersDisagreeInThePixels) {
  const Image photo = make_test_photo(200, 150);
  const Image cv_linear = resized(photo, ResizeLibrary::kOpenCv, "linear", exact(64, 48));
  EXPECT_GT(max_abs_diff(cv_linear, resized(photo, ResizeLibrary::kOpenCv, "area", exact(64, 48))), 0);
  EXPECT_GT(max_abs_diff(cv_linear, resized(photo, ResizeLibrary::kVips, "linear", exact(64, 48))), 0);
  EXPECT_GT(max_abs_diff(cv_linear, resized(photo, ResizeLibrary::kMagick, "triangle", exact(64, 48))), 0);
}

TEST(Resize, TorchAntialiasMattersWhenShrinkingOnly) {
  const Image photo = make_test_photo(200, 150);
  EXPECT_GT(max_abs_diff(resized(photo, ResizeLibrary::kTorch, "bilinear", exact(50, 40), true),
                         resized(photo, ResizeLibrary::kTorch, "bilinear", exact(50, 40), false)),
            0);
  // Enlarging: the antialias filter's support is the plain bilinear one.
  EXPECT_LE(max_abs_diff(resized(photo, ResizeLibrary::kTorch, "bilinear", exact(300, 220), true),
                         resized(photo, ResizeLibrary::kTorch, "bilinear", exact(300, 220), false)),
            1);
}

TEST(Resize, TheSameResizeTwiceIsBitIdentical) {
  const Image photo = make_test_photo(120, 90);
  for (ResizeLibrary library : {ResizeLibrary::kOpenCv, ResizeLibrary::kVips, ResizeLibrary::kMagick, ResizeLibrary::kTorch}) {
    const std::string method = resize_methods(library)[1];
    EXPECT_EQ(resized(photo, library, method, exact(51, 37)).pixels, resized(photo, library, method, exact(51, 37)).pixels);
  }
}

TEST(Resize, GrayImagesStayGray) {
  const Image gray = make_test_photo(40, 30, 1);
  for (ResizeLibrary library : {ResizeLibrary::kOpenCv, ResizeLibrary::kVips, ResizeLibrary::kMagick, ResizeLibrary::kTorch}) {
    EXPECT_EQ(resized(gray, library, resize_methods(library)[1], exact(20, 15)).channels, 1) << resize_library_name(library);
  }
}

TEST(Resize, BadRequestsAreRefused) {
  ResizeOptions options;
  options.method = "fastest";
  options.size = exact(10, 10);
  const Status status = resize_image(make_test_photo(20, 20), options).status();
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("fastest"), std::string::npos);
  options.method = "linear";
  EXPECT_EQ(resize_image(Image{}, options).status().code(), StatusCode::kInvalidArgument);
  options.size = TargetSize{};
  EXPECT_EQ(resize_image(make_test_photo(20, 20), options).status().code(), StatusCode::kInvalidArgument);
}

TEST(CenterCrop, CutsTheMiddleAsTorchvisionRounds) {
  const Image photo = make_test_photo(10, 7);
  const Image crop = center_crop(photo, CropOptions{4, 4, 0.0}).value();
  ASSERT_EQ(crop.width, 4);
  ASSERT_EQ(crop.height, 4);
  // left = round(6 / 2) = 3, top = round(3 / 2) = 2 (half to even... lround rounds away: 2).
  EXPECT_EQ(crop.at(0, 0, 0), photo.at(2, 3, 0));
  const Image fraction = center_crop(make_test_photo(100, 80), CropOptions{0, 0, 0.875}).value();
  EXPECT_EQ(fraction.width, 88);
  EXPECT_EQ(fraction.height, 70);
  EXPECT_EQ(center_crop(photo, CropOptions{11, 4, 0.0}).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace edgefleet
