// Decoding encoded image bytes into an Image, through a named real library, with every knob a
// device's decoder can differ in (DCT method, chroma upsampling, orientation handling).
//
// Policy, the same for every decoder so that only the library's arithmetic differs:
// - colour images become RGB, gray images stay gray (1 channel), alpha is dropped (not
//   composited), CMYK becomes RGB, 16-bit samples are scaled to 8 bits;
// - EXIF orientation of a JPEG is applied unless `apply_orientation` is false; HEIF rotation
//   and mirroring boxes follow the same switch; PNG and WebP orientation metadata is ignored;
// - a truncated file is an error (corrupt), not a partly grey picture;
// - images over `limits` are refused from their header, before any pixel is allocated.
// Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "edgefleet/image.h"

namespace edgefleet {

enum class ImageFormat { kUnknown, kJpeg, kPng, kWebp, kHeif, kBmp, kTiff, kGif, kPnm };

// The format named by the leading bytes ("magic numbers"); kUnknown when none matches.
ImageFormat sniff_image_format(const std::vector<std::uint8_t>& bytes);
const char* image_format_name(ImageFormat format);

// Width and height read from the header alone (JPEG, PNG, WebP), without decoding; nullopt
// for other formats or an unreadable header. What a server reserves memory by.
struct ImageSize {
  long long width = 0;
  long long height = 0;
};
std::optional<ImageSize> probe_image_size(const std::vector<std::uint8_t>& bytes);

struct DecodeLimits {
  std::size_t max_pixels = 100'000'000;   // refuse larger images (decompression bombs)
  std::size_t max_bytes = 256u << 20;     // refuse larger files
};

// The decoding libraries. kAuto picks the format's own library (libjpeg-turbo, libpng,
// libwebp, libheif) and OpenCV for the rest.
// kLibRaw develops camera raw files (DNG, CR2, NEF, ...) with LibRaw's defaults: AHD demosaic,
// the camera's white balance and colour matrix, sRGB gamma, 8 bits.
enum class Decoder { kAuto, kTurboJpeg, kOpenCv, kMagick, kVips, kLibPng, kLibWebp, kLibHeif, kLibRaw };

enum class DctMethod { kIslow, kIfast, kFloat };

// "auto", "turbojpeg", "opencv", "magick", "vips", "libpng", "libwebp", "libheif".
const char* decoder_name(Decoder decoder);

struct DecodeOptions {
  Decoder decoder = Decoder::kAuto;
  DctMethod dct = DctMethod::kIslow;  // libjpeg-turbo only
  bool fancy_upsampling = true;       // libjpeg-turbo only: smooth chroma upsampling
  bool apply_orientation = true;
  DecodeLimits limits;
};

// Returns the decoded image, or corrupt("...") naming `origin` when the bytes are not an
// image the decoder can read, unsupported() when the decoder cannot read that format, or
// invalid_argument when the image is over the limits.
Expected<Image> decode_image(const std::vector<std::uint8_t>& bytes, const std::string& origin,
                             const DecodeOptions& options);
Expected<Image> decode_image(const std::vector<std::uint8_t>& bytes, const std::string& origin,
                             const DecodeLimits& limits = {});

}  // namespace edgefleet
