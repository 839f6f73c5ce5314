#include "edgefleet/preprocess.h"

#include <cmath>
#include <opencv2/imgproc.hpp>

#include "imaging/opencv_image.h"

namespace edgefleet {
namespace {

cv::Mat to_colour(const cv::Mat& in, const std::string& color) {
  cv::Mat out;
  if (color == "gray") {
    if (in.channels() == 1) return in;
    cv::cvtColor(in, out, in.channels() == 4 ? cv::COLOR_RGBA2GRAY : cv::COLOR_RGB2GRAY);
    return out;
  }
  if (in.channels() == 1) {
    cv::cvtColor(in, out, cv::COLOR_GRAY2RGB);
  } else if (in.channels() == 4) {
    cv::cvtColor(in, out, cv::COLOR_RGBA2RGB);
  } else {
    out = in;
  }
  if (color == "bgr") cv::cvtColor(out, out, cv::COLOR_RGB2BGR);
  return out;
}

// Antialiased bilinear (PIL's convention), through libtorch's interpolate; rounds to 8 bits
// as PIL does.
cv::Mat resize_antialiased(const cv::Mat& in, int width, int height) {
  torch::InferenceMode guard;
  const int channels = in.channels();
  auto source = torch::from_blob(in.data, {1, in.rows, in.cols, channels}, torch::kUInt8)
                    .permute({0, 3, 1, 2})
                    .to(torch::kFloat32);
  auto resized = torch::nn::functional::interpolate(
      source, torch::nn::functional::InterpolateFuncOptions()
                  .size(std::vector<int64_t>{height, width})
                  .mode(torch::kBilinear)
                  .align_corners(false)
                  .antialias(true));
  auto bytes = resized.round().clamp(0, 255).to(torch::kUInt8).permute({0, 2, 3, 1}).contiguous();
  cv::Mat out(height, width, CV_MAKETYPE(CV_8U, channels));
  std::memcpy(out.data, bytes.data_ptr<std::uint8_t>(), out.total() * out.elemSize());
  return out;
}

cv::Mat resize(const cv::Mat& in, int width, int height, const std::string& interpolation) {
  if (in.cols == width && in.rows == height) return in;
  if (interpolation == "bilinear-antialias") return resize_antialiased(in, width, height);
  int flag = cv::INTER_LINEAR;
  if (interpolation == "area") flag = cv::INTER_AREA;
  if (interpolation == "nearest") flag = cv::INTER_NEAREST;
  if (interpolation == "bicubic") flag = cv::INTER_CUBIC;
  cv::Mat out;
  cv::resize(in, out, cv::Size(width, height), 0, 0, flag);
  return out;
}

cv::Mat centre_crop(const cv::Mat& in, int width, int height) {
  // torchvision's rounding: top = round((H - h) / 2).
  const int top = static_cast<int>(std::lround((in.rows - height) / 2.0));
  const int left = static_cast<int>(std::lround((in.cols - width) / 2.0));
  return in(cv::Rect(left, top, width, height));
}

}  // namespace

Expected<Image> preprocess_geometry(const Image& image, const InputContract& contract) {
  if (image.empty() || image.width <= 0 || image.height <= 0) return invalid_argument("preprocess: empty image");
  if (image.channels != 1 && image.channels != 3 && image.channels != 4) {
    return invalid_argument("preprocess: " + std::to_string(image.channels) + " channels, expected 1, 3 or 4");
  }
  return capture([&]() -> Image {
    cv::Mat mat = to_colour(mat_view(image), contract.color);
    const int h = contract.height;
    const int w = contract.width;
    if (contract.resize == "exact") {
      mat = resize(mat, w, h, contract.interpolation);
    } else if (contract.resize == "squash") {
      mat = centre_crop(resize(mat, contract.resize_size, contract.resize_size, contract.interpolation), w, h);
    } else {
      // shorter-side: the shorter side becomes resize_size, the longer keeps the aspect ratio.
      const double scale = static_cast<double>(contract.resize_size) / std::min(mat.cols, mat.rows);
      const int rw = std::max(w, mat.cols <= mat.rows ? contract.resize_size : static_cast<int>(mat.cols * scale));
      const int rh = std::max(h, mat.rows < mat.cols ? contract.resize_size : static_cast<int>(mat.rows * scale));
      mat = centre_crop(resize(mat, rw, rh, contract.interpolation), w, h);
    }
    return image_from_mat(mat);
  });
}

namespace {

std::vector<float> normalise(const Image& g, const InputContract& contract) {
  const int channels = g.channels;
  const std::size_t plane = static_cast<std::size_t>(g.width) * g.height;
  std::vector<float> out(plane * channels);
  const float scale = (contract.range_max - contract.range_min) / 255.0f;
  for (int c = 0; c < channels; ++c) {
    const float mean = contract.mean.empty() ? 0.0f : contract.mean[contract.mean.size() == 1 ? 0 : c];
    const float inv_std = contract.std.empty() ? 1.0f : 1.0f / contract.std[contract.std.size() == 1 ? 0 : c];
    float* dst = out.data() + c * plane;
    for (std::size_t p = 0; p < plane; ++p) {
      dst[p] = (g.pixels[p * channels + c] * scale + contract.range_min - mean) * inv_std;
    }
  }
  return out;
}

}  // namespace

Expected<std::vector<float>> preprocess(const Image& image, const InputContract& contract) {
  auto geometry = preprocess_geometry(image, contract);
  if (!geometry) return geometry.status();
  return normalise(*geometry, contract);
}

Expected<std::vector<float>> to_model_input(const Image& image, const InputContract& contract) {
  if (image.width != contract.width || image.height != contract.height) return preprocess(image, contract);
  if (image.channels != 1 && image.channels != 3 && image.channels != 4) {
    return invalid_argument("preprocess: " + std::to_string(image.channels) + " channels, expected 1, 3 or 4");
  }
  return capture([&] { return normalise(image_from_mat(to_colour(mat_view(image), contract.color)), contract); });
}

}  // namespace edgefleet
