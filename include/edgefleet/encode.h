// Encoding an Image into a file format through a real library, with the knobs devices differ
// in: JPEG (libjpeg-turbo: quality, chroma subsampling, DCT method), PNG (libpng), WebP
// (libwebp: quality, lossless), HEIF (libheif with x265: quality, lossless). Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "edgefleet/decode.h"
#include "edgefleet/image.h"

namespace edgefleet {

enum class ChromaSubsampling { k444, k422, k420 };

struct EncodeOptions {
  ImageFormat format = ImageFormat::kJpeg;  // kJpeg | kPng | kWebp | kHeif
  int quality = 0;  // 1..100 (JPEG, WebP, HEIF); 0 = the format's default, kDefaultQuality
  ChromaSubsampling subsampling = ChromaSubsampling::k420;  // JPEG
  DctMethod dct = DctMethod::kIslow;                        // JPEG
  bool lossless = false;                                    // WebP, HEIF
  // HEIF: the x265 preset (ultrafast .. placebo, kX265Presets); empty = libheif's default
  // ("slow"). Phones encode HEIF in hardware, in real time: a fast preset is closer to them.
  std::string preset;
};

// The x265 presets, fastest first.
const std::vector<std::string>& x265_presets();

// The quality used when none is given (paper §5.2 compares formats "with their default
// compression parameters"): JPEG 92 (ImageMagick, the paper's converter), WebP 75 (cwebp),
// HEIF 50 (libheif).
int default_quality(ImageFormat format);

// Fails with invalid_argument for an empty image or a bad quality, unsupported for a format
// this build cannot write.
Expected<std::vector<std::uint8_t>> encode_image(const Image& image, const EncodeOptions& options);

}  // namespace edgefleet
