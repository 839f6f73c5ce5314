#include "edgefleet/preprocess.h"

#include <algorithm>
#include <opencv2/imgproc.hpp>

#include "edgefleet/resize.h"
#include "imaging/opencv_image.h"

namespace edgefleet {
namespace {

cv::Mat to_colour(const cv::Mat& in, InputColor color) {
  cv::Mat out;
  if (color == InputColor::kGray) {
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
  if (color == InputColor::kBgr) cv::cvtColor(out, out, cv::COLOR_RGB2BGR);
  return out;
}

// The card's interpolation as a resize stage: "bilinear-antialias" is PIL's convention,
// through libtorch's interpolate; the others are OpenCV's filters.
ResizeOptions resize_stage(Interpolation interpolation, int width, int height) {
  ResizeOptions o;
  o.library = ResizeLibrary::kOpenCv;
  switch (interpolation) {
    case Interpolation::kBilinearAntialias:
      o.library = ResizeLibrary::kTorch;
      o.method = "bilinear";
      o.antialias = true;
      break;
    case Interpolation::kBilinear: o.method = "linear"; break;
    case Interpolation::kArea: o.method = "area"; break;
    case Interpolation::kNearest: o.method = "nearest"; break;
    case Interpolation::kBicubic: o.method = "cubic"; break;
  }
  o.size.width = width;
  o.size.height = height;
  return o;
}

Image resized(const Image& in, int width, int height, Interpolation interpolation) {
  if (in.width == width && in.height == height) return in;
  return resize_image(in, resize_stage(interpolation, width, height)).value();
}

Image cropped(const Image& in, int width, int height) {
  CropOptions crop;
  crop.width = width;
  crop.height = height;
  return center_crop(in, crop).value();
}

}  // namespace

// One implementation of each geometry: the card's resize and crop are imaging's stages.
Expected<Image> preprocess_geometry(const Image& image, const InputContract& contract) {
  if (image.empty() || image.width <= 0 || image.height <= 0) return invalid_argument("preprocess: empty image");
  if (image.channels != 1 && image.channels != 3 && image.channels != 4) {
    return invalid_argument("preprocess: " + std::to_string(image.channels) + " channels, expected 1, 3 or 4");
  }
  return capture([&]() -> Image {
    const Image coloured = image_from_mat(to_colour(mat_view(image), contract.color));
    const int h = contract.height;
    const int w = contract.width;
    if (contract.resize == ResizeRule::kExact) return resized(coloured, w, h, contract.interpolation);
    if (contract.resize == ResizeRule::kSquash) {
      return cropped(resized(coloured, contract.resize_size, contract.resize_size, contract.interpolation), w, h);
    }
    // shorter-side: the shorter side becomes resize_size, the longer keeps the aspect ratio
    // (torchvision's Resize(int)), never smaller than the crop.
    TargetSize shorter;
    shorter.shorter_side = contract.resize_size;
    int rw = 0, rh = 0;
    resolve_target_size(shorter, coloured.width, coloured.height, &rw, &rh);
    return cropped(resized(coloured, std::max(w, rw), std::max(h, rh), contract.interpolation), w, h);
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
