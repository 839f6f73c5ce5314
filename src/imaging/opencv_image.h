// Internal: zero-copy views and copies between edgefleet::Image and cv::Mat.
#pragma once

#include <opencv2/core.hpp>

#include "edgefleet/image.h"

namespace edgefleet {

// A cv::Mat header over the image's pixels (no copy; valid while `image` lives unchanged).
inline cv::Mat mat_view(const Image& image) {
  const int type = CV_MAKETYPE(CV_8U, image.channels);
  return cv::Mat(image.height, image.width, type, const_cast<std::uint8_t*>(image.pixels.data()));
}

// Copies an 8-bit 1/3/4-channel Mat into an Image.
inline Image image_from_mat(const cv::Mat& mat) {
  cv::Mat contiguous = mat.isContinuous() ? mat : mat.clone();
  Image image;
  image.width = contiguous.cols;
  image.height = contiguous.rows;
  image.channels = contiguous.channels();
  image.pixels.assign(contiguous.data, contiguous.data + contiguous.total() * contiguous.elemSize());
  return image;
}

}  // namespace edgefleet
