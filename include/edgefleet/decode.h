// Decoding encoded image bytes (JPEG, PNG, WebP, BMP, TIFF, PNM) into an Image.
// Policy: colour images become RGB, gray stays gray, alpha is dropped, 16-bit is scaled to
// 8-bit, EXIF orientation is applied. Thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "edgefleet/image.h"

namespace edgefleet {

struct DecodeLimits {
  std::size_t max_pixels = 100'000'000;  // refuse larger images (decompression bombs)
};

// Returns the decoded image, or corrupt("...") naming `origin` when the bytes are not an
// image this build can decode, or invalid_argument when the image is over the limits.
Expected<Image> decode_image(const std::vector<std::uint8_t>& bytes, const std::string& origin,
                             const DecodeLimits& limits = {});

}  // namespace edgefleet
