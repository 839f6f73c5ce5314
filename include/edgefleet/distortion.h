// Photometric distortion: the "simulated phone noise" of stability training (instability
// paper §9.1), which randomly distorts brightness, contrast, saturation, hue and JPEG
// quality. Colour maths by OpenCV, the JPEG round trip by the real encoder and decoder.
// Thread-safe (no shared state).
#pragma once

#include <cstdint>

#include "edgefleet/image.h"
#include "edgefleet/status.h"

namespace edgefleet {

struct Distortion {
  double brightness = 0.0;   // added, as a fraction of full scale
  double contrast = 1.0;     // factor around the image's mean
  double saturation = 1.0;   // factor on HSV saturation (colour images)
  double hue_degrees = 0.0;  // rotation of HSV hue (colour images)
  int jpeg_quality = 0;      // 1..100: JPEG round trip at this quality; 0 = none
};

// A random distortion of the given strength in [0, 1], the same for the same seed: brightness
// within +-0.2*strength, contrast and saturation within 1 +- 0.3/0.4*strength, hue within
// +-18*strength degrees, JPEG quality within [100 - 70*strength, 100] (none at strength 0).
Distortion draw_distortion(double strength, std::uint64_t seed);

// Fails with invalid_argument for an empty image or out-of-range values.
Expected<Image> apply_distortion(const Image& image, const Distortion& distortion);

}  // namespace edgefleet
