// Internal: one decoding function per library, and the checks they share. Each applies the
// policy written in include/edgefleet/decode.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "edgefleet/decode.h"

namespace edgefleet::detail {

using Bytes = std::vector<std::uint8_t>;

Expected<Image> decode_turbojpeg(const Bytes& bytes, const std::string& origin, const DecodeOptions& options);
Expected<Image> decode_opencv(const Bytes& bytes, const std::string& origin, const DecodeOptions& options);
Expected<Image> decode_magick(const Bytes& bytes, const std::string& origin, const DecodeOptions& options);
Expected<Image> decode_vips(const Bytes& bytes, const std::string& origin, const DecodeOptions& options);
Expected<Image> decode_libpng(const Bytes& bytes, const std::string& origin, const DecodeOptions& options);
Expected<Image> decode_libwebp(const Bytes& bytes, const std::string& origin, const DecodeOptions& options);
Expected<Image> decode_libheif(const Bytes& bytes, const std::string& origin, const DecodeOptions& options);
Expected<Image> decode_libraw(const Bytes& bytes, const std::string& origin, const DecodeOptions& options);

// Width and height from the file's header without decoding pixels, for JPEG (its frame
// header), PNG (IHDR) and WebP (libwebp). False for other formats or unreadable headers.
bool probe_dimensions(const Bytes& bytes, ImageFormat format, long long* width, long long* height);

// Walks a JPEG's markers and entropy-coded data: true when it reaches the end-of-image marker
// (false when truncated); the first frame header's size goes to width/height (left as they
// are when there is none, so pass zeros).
bool walk_jpeg_markers(const Bytes& bytes, int* width, int* height);

// invalid_argument naming the size when width x height is over the limit or not positive.
Status check_dimensions(long long width, long long height, const std::string& origin, const DecodeLimits& limits);

// The EXIF orientation (1..8) of a JPEG's APP1 segment, 1 when absent or unreadable.
int exif_orientation(const Bytes& bytes);
// Rotates/mirrors so that an image stored with EXIF `orientation` is upright.
Image apply_orientation(const Image& image, int orientation);

// Drops an alpha channel: 4 -> 3 (RGB), 2 -> 1 (gray).
Image drop_alpha(Image image);

}  // namespace edgefleet::detail
