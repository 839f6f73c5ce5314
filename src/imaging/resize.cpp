#include "edgefleet/resize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <Magick++.h>
#include <c10/core/InferenceMode.h>
#include <opencv2/imgproc.hpp>
#include <torch/nn/functional/upsampling.h>
#include <torch/types.h>
#include <vips/vips8>

#include "imaging/magick_runtime.h"
#include "imaging/opencv_image.h"

namespace edgefleet {
namespace {

int index_of(const std::vector<std::string>& names, const std::string& name) {
  const auto it = std::find(names.begin(), names.end(), name);
  return it == names.end() ? -1 : static_cast<int>(it - names.begin());
}

Image resize_opencv(const Image& image, int method, int width, int height) {
  static const int kFlags[] = {cv::INTER_NEAREST, cv::INTER_LINEAR, cv::INTER_CUBIC,
                               cv::INTER_AREA,    cv::INTER_LANCZOS4, cv::INTER_LINEAR_EXACT};
  Image result;
  result.width = width;
  result.height = height;
  result.channels = image.channels;
  result.pixels.resize(static_cast<std::size_t>(width) * height * image.channels);
  cv::Mat out = mat_view(result);  // cv::resize writes straight into the result's buffer
  cv::resize(mat_view(image), out, cv::Size(width, height), 0, 0, kFlags[method]);
  return result;
}

Image resize_vips(const Image& image, int method, int width, int height) {
  static const VipsKernel kKernels[] = {VIPS_KERNEL_NEAREST, VIPS_KERNEL_LINEAR,   VIPS_KERNEL_CUBIC,
                                        VIPS_KERNEL_MITCHELL, VIPS_KERNEL_LANCZOS2, VIPS_KERNEL_LANCZOS3};
  detail::ensure_vips_initialised();
  vips::VImage in = vips::VImage::new_from_memory(const_cast<std::uint8_t*>(image.pixels.data()), image.pixels.size(),
                                                  image.width, image.height, image.channels, VIPS_FORMAT_UCHAR);
  const double hscale = static_cast<double>(width) / image.width;
  const double vscale = static_cast<double>(height) / image.height;
  vips::VImage out = in.resize(hscale, vips::VImage::option()->set("vscale", vscale)->set("kernel", kKernels[method]));
  if (out.width() != width || out.height() != height) {
    // libvips rounds the output size itself; trim or pad the last row/column to the target.
    out = out.embed(0, 0, width, height, vips::VImage::option()->set("extend", VIPS_EXTEND_COPY));
  }
  std::size_t size = 0;
  void* memory = out.write_to_memory(&size);
  Image result;
  result.width = width;
  result.height = height;
  result.channels = image.channels;
  result.pixels.assign(static_cast<std::uint8_t*>(memory), static_cast<std::uint8_t*>(memory) + size);
  g_free(memory);
  return result;
}

Image resize_magick(const Image& image, int method, int width, int height) {
  static const MagickCore::FilterTypes kFilters[] = {
      MagickCore::PointFilter,   MagickCore::BoxFilter,     MagickCore::TriangleFilter, MagickCore::HermiteFilter,
      MagickCore::CatromFilter,  MagickCore::MitchellFilter, MagickCore::LanczosFilter, MagickCore::GaussianFilter};
  detail::ensure_magick_initialised();
  const char* map = image.channels == 1 ? "I" : image.channels == 4 ? "RGBA" : "RGB";
  Magick::Image picture(image.width, image.height, map, Magick::CharPixel, image.pixels.data());
  picture.filterType(kFilters[method]);
  Magick::Geometry geometry(width, height);
  geometry.aspect(true);  // exactly width x height
  picture.resize(geometry);
  Image result;
  result.width = width;
  result.height = height;
  result.channels = image.channels;
  result.pixels.resize(static_cast<std::size_t>(width) * height * image.channels);
  picture.write(0, 0, width, height, map, Magick::CharPixel, result.pixels.data());
  return result;
}

Image resize_torch(const Image& image, int method, int width, int height, bool antialias) {
  namespace F = torch::nn::functional;
  torch::InferenceMode guard;
  auto source = torch::from_blob(const_cast<std::uint8_t*>(image.pixels.data()), {1, image.height, image.width, image.channels},
                                 torch::kUInt8)
                    .permute({0, 3, 1, 2})
                    .to(torch::kFloat32);
  auto options = F::InterpolateFuncOptions().size(std::vector<int64_t>{height, width});
  switch (method) {
    case 0: options.mode(torch::kNearest); break;
    case 1: options.mode(torch::kBilinear).align_corners(false).antialias(antialias); break;
    case 2: options.mode(torch::kBicubic).align_corners(false).antialias(antialias); break;
    default: options.mode(torch::kArea); break;
  }
  auto bytes = F::interpolate(source, options).round().clamp(0, 255).to(torch::kUInt8).permute({0, 2, 3, 1}).contiguous();
  Image result;
  result.width = width;
  result.height = height;
  result.channels = image.channels;
  result.pixels.assign(bytes.data_ptr<std::uint8_t>(), bytes.data_ptr<std::uint8_t>() + bytes.numel());
  return result;
}

}  // namespace

const char* resize_library_name(ResizeLibrary library) {
  switch (library) {
    case ResizeLibrary::kVips: return "vips";
    case ResizeLibrary::kMagick: return "magick";
    case ResizeLibrary::kTorch: return "torch";
    case ResizeLibrary::kOpenCv: break;
  }
  return "opencv";
}

const std::vector<std::string>& resize_methods(ResizeLibrary library) {
  static const std::vector<std::string> kOpenCv = {"nearest", "linear", "cubic", "area", "lanczos4", "linear_exact"};
  static const std::vector<std::string> kVips = {"nearest", "linear", "cubic", "mitchell", "lanczos2", "lanczos3"};
  static const std::vector<std::string> kMagick = {"point",   "box",      "triangle", "hermite",
                                                   "catrom", "mitchell", "lanczos",  "gaussian"};
  static const std::vector<std::string> kTorch = {"nearest", "bilinear", "bicubic", "area"};
  switch (library) {
    case ResizeLibrary::kVips: return kVips;
    case ResizeLibrary::kMagick: return kMagick;
    case ResizeLibrary::kTorch: return kTorch;
    case ResizeLibrary::kOpenCv: break;
  }
  return kOpenCv;
}

void resolve_target_size(const TargetSize& size, int width, int height, int* out_width, int* out_height) {
  if (size.shorter_side > 0) {
    // torchvision's Resize(int): the longer side is truncated, not rounded.
    if (width <= height) {
      *out_width = size.shorter_side;
      *out_height = std::max(1, static_cast<int>(static_cast<long long>(size.shorter_side) * height / width));
    } else {
      *out_height = size.shorter_side;
      *out_width = std::max(1, static_cast<int>(static_cast<long long>(size.shorter_side) * width / height));
    }
    return;
  }
  *out_width = size.width;
  *out_height = size.height;
}

Expected<Image> resize_image(const Image& image, const ResizeOptions& options) {
  if (image.empty() || image.width <= 0 || image.height <= 0) return invalid_argument("resize: empty image");
  if (image.channels < 1 || image.channels > 4) {
    return invalid_argument("resize: " + std::to_string(image.channels) + " channels, expected 1 to 4");
  }
  const int method = index_of(resize_methods(options.library), options.method);
  if (method < 0) {
    return invalid_argument(std::string("resize: ") + resize_library_name(options.library) + " has no method '" +
                            options.method + "'");
  }
  if (options.size.from_model) {
    return invalid_argument("resize: size 'model' is not bound to a model's input yet (bind_to_input)");
  }
  if (options.size.shorter_side <= 0 && (options.size.width <= 0 || options.size.height <= 0)) {
    return invalid_argument("resize: no target size");
  }
  int width = 0, height = 0;
  resolve_target_size(options.size, image.width, image.height, &width, &height);
  if (static_cast<long long>(width) * height > 100'000'000LL) {
    return invalid_argument("resize: " + std::to_string(width) + "x" + std::to_string(height) + " is too large");
  }
  return capture([&]() -> Image {
    try {
      switch (options.library) {
        case ResizeLibrary::kVips: return resize_vips(image, method, width, height);
        case ResizeLibrary::kMagick: return resize_magick(image, method, width, height);
        case ResizeLibrary::kTorch: return resize_torch(image, method, width, height, options.antialias);
        case ResizeLibrary::kOpenCv: break;
      }
      return resize_opencv(image, method, width, height);
    } catch (const vips::VError& e) {
      throw Error(internal_error(std::string("resize: libvips: ") + first_meaningful_line(e.what())));
    } catch (const Magick::Exception& e) {
      throw Error(internal_error(std::string("resize: ImageMagick: ") + first_meaningful_line(e.what())));
    }
  });
}

Expected<Image> center_crop(const Image& image, const CropOptions& options) {
  if (image.empty() || image.width <= 0 || image.height <= 0) return invalid_argument("crop: empty image");
  if (options.from_model) return invalid_argument("crop: size 'model' is not bound to a model's input yet (bind_to_input)");
  int width = options.width;
  int height = options.height;
  if (options.fraction > 0.0) {
    if (options.fraction > 1.0) return invalid_argument("crop: fraction " + std::to_string(options.fraction) + " is over 1");
    width = std::max(1, static_cast<int>(std::lround(image.width * options.fraction)));
    height = std::max(1, static_cast<int>(std::lround(image.height * options.fraction)));
  }
  if (width <= 0 || height <= 0) return invalid_argument("crop: no crop size");
  if (width > image.width || height > image.height) {
    return invalid_argument("crop: " + std::to_string(width) + "x" + std::to_string(height) + " is larger than the " +
                            std::to_string(image.width) + "x" + std::to_string(image.height) + " image");
  }
  // torchvision's CenterCrop: top = round((H - h) / 2).
  const int top = static_cast<int>(std::lround((image.height - height) / 2.0));
  const int left = static_cast<int>(std::lround((image.width - width) / 2.0));
  return image_from_mat(mat_view(image)(cv::Rect(left, top, width, height)));
}

}  // namespace edgefleet
