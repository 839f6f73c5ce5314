#include "edgefleet/color_conversion.h"

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "imaging/opencv_image.h"

namespace edgefleet {
namespace {

// Kr, Kb of ITU-R BT.601 and BT.709.
void luma_weights(YuvMatrix matrix, double* kr, double* kb) {
  if (matrix == YuvMatrix::kBt709) {
    *kr = 0.2126;
    *kb = 0.0722;
  } else {
    *kr = 0.299;
    *kb = 0.114;
  }
}

// The 3x4 affine map RGB (0..255) -> Y'CbCr (8-bit code values, as floats).
cv::Matx34d forward_matrix(YuvMatrix matrix, YuvRange range) {
  double kr = 0, kb = 0;
  luma_weights(matrix, &kr, &kb);
  const double kg = 1.0 - kr - kb;
  const double y_scale = range == YuvRange::kLimited ? 219.0 / 255.0 : 1.0;
  const double c_scale = range == YuvRange::kLimited ? 224.0 / 255.0 : 1.0;
  const double y_offset = range == YuvRange::kLimited ? 16.0 : 0.0;
  const double cb = c_scale / (2.0 * (1.0 - kb));
  const double cr = c_scale / (2.0 * (1.0 - kr));
  return cv::Matx34d(y_scale * kr, y_scale * kg, y_scale * kb, y_offset,           //
                     -cb * kr, -cb * kg, cb * (1.0 - kb), 128.0,                   //
                     cr * (1.0 - kr), -cr * kg, -cr * kb, 128.0);
}

cv::Matx34d inverse_of(const cv::Matx34d& m) {
  const cv::Matx33d linear(m(0, 0), m(0, 1), m(0, 2), m(1, 0), m(1, 1), m(1, 2), m(2, 0), m(2, 1), m(2, 2));
  const cv::Matx33d inv = linear.inv();
  const cv::Vec3d offset = -(inv * cv::Vec3d(m(0, 3), m(1, 3), m(2, 3)));
  return cv::Matx34d(inv(0, 0), inv(0, 1), inv(0, 2), offset[0], inv(1, 0), inv(1, 1), inv(1, 2), offset[1],
                     inv(2, 0), inv(2, 1), inv(2, 2), offset[2]);
}

// Chroma planes down to the subsampled grid (box average) and back up (bilinear), the way a
// 4:2:x buffer is written by an encoder and read by a display path.
void subsample_chroma(cv::Mat& ycbcr, ChromaSubsampling chroma) {
  if (chroma == ChromaSubsampling::k444) return;
  std::vector<cv::Mat> planes;
  cv::split(ycbcr, planes);
  const int w = (ycbcr.cols + 1) / 2;
  const int h = chroma == ChromaSubsampling::k420 ? (ycbcr.rows + 1) / 2 : ycbcr.rows;
  for (int c = 1; c <= 2; ++c) {
    cv::Mat small;
    cv::resize(planes[c], small, cv::Size(w, h), 0, 0, cv::INTER_AREA);
    if (planes[c].depth() == CV_8U) small.convertTo(small, CV_8U);  // stored as bytes
    cv::resize(small, planes[c], ycbcr.size(), 0, 0, cv::INTER_LINEAR);
  }
  cv::merge(planes, ycbcr);
}

}  // namespace

YCbCr rgb_to_ycbcr(double r, double g, double b, YuvMatrix matrix, YuvRange range) {
  const cv::Matx34d m = forward_matrix(matrix, range);
  const cv::Vec4d rgb(r, g, b, 1.0);
  const cv::Vec3d out = m * rgb;
  return {out[0], out[1], out[2]};
}

Expected<Image> color_round_trip(const Image& image, const ColorConversionOptions& options) {
  if (image.empty() || image.width <= 0 || image.height <= 0) return invalid_argument("color: empty image");
  if (image.channels == 1) return image;
  if (image.channels != 3) {
    return invalid_argument("color: " + std::to_string(image.channels) + " channels, expected 3 (RGB) or 1 (gray)");
  }
  const cv::Matx34d forward = forward_matrix(options.matrix, options.range);
  cv::Mat rgb;
  mat_view(image).convertTo(rgb, CV_32F);
  cv::Mat ycbcr;
  cv::transform(rgb, ycbcr, cv::Mat(forward));
  if (options.round_to_uint8) ycbcr.convertTo(ycbcr, CV_8U);  // rounds and saturates as a byte buffer does
  subsample_chroma(ycbcr, options.chroma);
  if (ycbcr.depth() != CV_32F) ycbcr.convertTo(ycbcr, CV_32F);
  cv::Mat back;
  cv::transform(ycbcr, back, cv::Mat(inverse_of(forward)));
  back.convertTo(back, CV_8U);
  if (options.swap_red_blue) cv::cvtColor(back, back, cv::COLOR_RGB2BGR);
  return image_from_mat(back);
}

}  // namespace edgefleet
