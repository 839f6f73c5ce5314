// Geometry stages: resizing through a real library (OpenCV, libvips, ImageMagick, libtorch
// `interpolate`) with its own filter names, and cropping as model families' preprocessing
// conventions do. Thread-safe.
#pragma once

#include <string>

#include "edgefleet/image.h"

namespace edgefleet {

enum class ResizeLibrary { kOpenCv, kVips, kMagick, kTorch };

// A target size: either the shorter side (aspect kept) or an exact width x height (squash).
struct TargetSize {
  int shorter_side = 0;  // > 0: shorter side becomes this, the longer one keeps the aspect ratio
  int width = 0;         // with height > 0: exact size
  int height = 0;
  bool from_model = false;  // "the size the model's input contract asks for", bound later
};

struct ResizeOptions {
  ResizeLibrary library = ResizeLibrary::kOpenCv;
  // The library's own filter name:
  //   opencv: nearest linear cubic area lanczos4 linear_exact
  //   vips:   nearest linear cubic mitchell lanczos2 lanczos3
  //   magick: point box triangle hermite catrom mitchell lanczos gaussian
  //   torch:  nearest bilinear bicubic area
  std::string method = "linear";
  TargetSize size;
  bool antialias = false;  // torch bilinear/bicubic only
};

// The filter names `library` accepts, for error messages and validation.
const std::vector<std::string>& resize_methods(ResizeLibrary library);
const char* resize_library_name(ResizeLibrary library);

// The output size for an input of `width` x `height` (shorter side rounded as torchvision does).
void resolve_target_size(const TargetSize& size, int width, int height, int* out_width, int* out_height);

Expected<Image> resize_image(const Image& image, const ResizeOptions& options);

// Centre crop to width x height, or to `fraction` of each side when fraction > 0 (Inception's
// central_fraction). Offsets round as torchvision's CenterCrop does. Fails when the crop is
// larger than the image.
struct CropOptions {
  int width = 0;
  int height = 0;
  double fraction = 0.0;
  bool from_model = false;  // the model's input size, bound later
};
Expected<Image> center_crop(const Image& image, const CropOptions& options);

}  // namespace edgefleet
