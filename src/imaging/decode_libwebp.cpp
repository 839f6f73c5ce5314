#include <webp/decode.h>

#include "imaging/decoders.h"

namespace edgefleet::detail {

Expected<Image> decode_libwebp(const Bytes& bytes, const std::string& origin, const DecodeOptions& options) {
  WebPBitstreamFeatures features;
  const VP8StatusCode status = WebPGetFeatures(bytes.data(), bytes.size(), &features);
  if (status != VP8_STATUS_OK) {
    return corrupt(origin + ": not a readable WebP (libwebp status " + std::to_string(static_cast<int>(status)) + ")");
  }
  if (features.has_animation) return unsupported(origin + ": animated WebP is not a single picture");
  if (Status s = check_dimensions(features.width, features.height, origin, options.limits); !s.is_ok()) return s;
  Image image;
  image.width = features.width;
  image.height = features.height;
  image.channels = 3;  // WebP has no gray mode; alpha is dropped by decoding to RGB
  image.pixels.resize(static_cast<std::size_t>(image.width) * image.height * 3);
  const int stride = image.width * 3;
  if (WebPDecodeRGBInto(bytes.data(), bytes.size(), image.pixels.data(), image.pixels.size(), stride) == nullptr) {
    return corrupt(origin + ": cannot decode WebP (truncated or corrupt bitstream)");
  }
  return image;
}

}  // namespace edgefleet::detail
