#include "edgefleet/distortion.h"

#include <random>

#include <opencv2/imgproc.hpp>

#include "edgefleet/decode.h"
#include "edgefleet/encode.h"
#include "imaging/opencv_image.h"

namespace edgefleet {

Distortion draw_distortion(double strength, std::uint64_t seed) {
  strength = std::clamp(strength, 0.0, 1.0);
  std::mt19937_64 random(seed);
  auto uniform = [&](double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(random); };
  Distortion d;
  d.brightness = uniform(-0.2, 0.2) * strength;
  d.contrast = 1.0 + uniform(-0.3, 0.3) * strength;
  d.saturation = 1.0 + uniform(-0.4, 0.4) * strength;
  d.hue_degrees = uniform(-18.0, 18.0) * strength;
  const int lowest = static_cast<int>(std::lround(100 - 70 * strength));
  d.jpeg_quality = strength > 0 ? std::uniform_int_distribution<int>(lowest, 100)(random) : 0;
  return d;
}

Expected<Image> apply_distortion(const Image& image, const Distortion& d) {
  if (image.empty()) return invalid_argument("distortion: empty image");
  if (image.channels != 1 && image.channels != 3) {
    return invalid_argument("distortion: " + std::to_string(image.channels) + " channels (expected 1 or 3)");
  }
  if (d.contrast < 0 || d.saturation < 0 || d.jpeg_quality < 0 || d.jpeg_quality > 100) {
    return invalid_argument("distortion: contrast and saturation must be >= 0 and JPEG quality 0..100");
  }
  cv::Mat pixels;
  mat_view(image).convertTo(pixels, image.channels == 1 ? CV_32FC1 : CV_32FC3, 1.0 / 255.0);
  if (image.channels == 3 && (d.saturation != 1.0 || d.hue_degrees != 0.0)) {
    cv::Mat hsv;
    cv::cvtColor(pixels, hsv, cv::COLOR_RGB2HSV_FULL);  // float: H in [0, 360), S and V in [0, 1]
    std::vector<cv::Mat> planes;
    cv::split(hsv, planes);
    cv::Mat& hue = planes[0];
    hue += d.hue_degrees;
    cv::subtract(hue, cv::Scalar(360.0), hue, hue >= 360.0);
    cv::add(hue, cv::Scalar(360.0), hue, hue < 0.0);
    planes[1] = cv::min(planes[1] * d.saturation, 1.0);
    cv::merge(planes, hsv);
    cv::cvtColor(hsv, pixels, cv::COLOR_HSV2RGB_FULL);
  }
  const cv::Scalar mean = cv::mean(pixels);
  pixels = (pixels - mean) * d.contrast + mean + cv::Scalar::all(d.brightness);
  cv::Mat bytes;
  pixels.convertTo(bytes, image.channels == 1 ? CV_8UC1 : CV_8UC3, 255.0);  // saturating
  Image out = image_from_mat(bytes);
  if (d.jpeg_quality == 0) return out;
  EncodeOptions jpeg;
  jpeg.quality = d.jpeg_quality;
  auto encoded = encode_image(out, jpeg);
  if (!encoded) return encoded.status();
  auto decoded = decode_image(*encoded, "distortion");
  if (!decoded) return decoded.status();
  if (decoded->channels == image.channels) return decoded;
  cv::Mat converted;
  cv::cvtColor(mat_view(*decoded), converted, image.channels == 1 ? cv::COLOR_RGB2GRAY : cv::COLOR_GRAY2RGB);
  return image_from_mat(converted);
}

}  // namespace edgefleet
