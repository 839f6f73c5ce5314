// Colour conversion as a device's camera/video path does it: RGB -> Y'CbCr -> RGB with a
// chosen matrix (BT.601 or BT.709), range (full or limited "studio" range), chroma
// subsampling (4:4:4, 4:2:2, 4:2:0), rounding of the intermediate (uint8 as stored in a
// buffer, or kept in float), and the channel order handed to the model (RGB or swapped BGR).
// The coefficients are the ITU-R recommendations'; the arithmetic is OpenCV's. Thread-safe.
#pragma once

#include "edgefleet/encode.h"
#include "edgefleet/image.h"

namespace edgefleet {

enum class YuvMatrix { kBt601, kBt709 };
enum class YuvRange { kFull, kLimited };

struct ColorConversionOptions {
  YuvMatrix matrix = YuvMatrix::kBt601;
  YuvRange range = YuvRange::kFull;
  ChromaSubsampling chroma = ChromaSubsampling::k444;
  bool round_to_uint8 = true;  // quantise Y'CbCr to 8 bits between the two conversions
  bool swap_red_blue = false;  // hand the model BGR instead of RGB
};

// RGB -> Y'CbCr with `options`, then back to RGB with the same matrix and range.
// Gray images pass through (only RGB can be converted); fails on other channel counts.
Expected<Image> color_round_trip(const Image& image, const ColorConversionOptions& options);

// Y'CbCr (float, Y in [0,255] or [16,235], Cb/Cr centred on 128) of one RGB colour.
struct YCbCr {
  double y = 0, cb = 0, cr = 0;
};
YCbCr rgb_to_ycbcr(double r, double g, double b, YuvMatrix matrix, YuvRange range);

}  // namespace edgefleet
