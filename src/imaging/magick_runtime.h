// Internal: ImageMagick (Magick++) and libvips need one process-wide initialisation each.
#pragma once

namespace edgefleet::detail {

// Idempotent and thread-safe.
void ensure_magick_initialised();
void ensure_vips_initialised();

}  // namespace edgefleet::detail
