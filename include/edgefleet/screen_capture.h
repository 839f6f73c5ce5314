// A picture shown on a screen and photographed by a phone on a mount: the set-up of the
// instability paper's end-to-end experiment (§3.2). Before the phone's sensor sees it, the
// picture is misregistered (scale, shift, rotation, keystone: each phone's lens sits
// elsewhere on its body and the mount is never exactly square to the screen), defocused and
// exposed differently (each phone's auto-focus and auto-exposure). The options are
// tolerances; `seed` draws one realisation within them, the same for every picture (a phone
// does not move between pictures of one session; another seed is another session).
// Deterministic; thread-safe.
#pragma once

#include <cstdint>

#include "edgefleet/image.h"
#include "edgefleet/status.h"

namespace edgefleet {

struct ScreenCaptureOptions {
  double scale = 0.0;     // magnification error: uniform in [-scale, scale] (relative)
  double shift = 0.0;     // offset: uniform in [-shift, shift] of the width and of the height
  double rotate = 0.0;    // roll: uniform in [-rotate, rotate] degrees
  double keystone = 0.0;  // perspective: one side taller by up to this fraction of the height
  double blur = 0.0;      // defocus: Gaussian sigma uniform in [0, blur] of the picture's shorter side
  double exposure = 0.0;  // exposure error: uniform in [-exposure, exposure] stops, in linear light
  std::uint64_t seed = 0;
};

// The realisation `options.seed` draws (what photograph_screen applies).
struct ScreenCaptureDraw {
  double scale = 1.0, shift_x = 0.0, shift_y = 0.0, rotate_degrees = 0.0, keystone = 0.0, blur = 0.0, exposure = 0.0;
};
ScreenCaptureDraw draw_screen_capture(const ScreenCaptureOptions& options);

// The picture as the phone's sensor sees it, at the picture's size (the app crops the photo
// to the picture on the screen; what falls outside is filled from the nearest edge).
Expected<Image> photograph_screen(const Image& picture, const ScreenCaptureOptions& options);

}  // namespace edgefleet
