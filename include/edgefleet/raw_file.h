// Raw files: the virtual sensor's mosaic written as a DNG (libtiff: CFA pattern, white level,
// colour matrix, as-shot neutral), so real raw developers can process it, and raw files
// (DNG and every format LibRaw reads) read back to a mosaic. Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "edgefleet/camera.h"
#include "edgefleet/status.h"

namespace edgefleet {

// A 16-bit uncompressed DNG 1.4 of `raw` written to `path`: ColorMatrix1 is the sensor's
// XYZ -> camera matrix (`sensor.sensor`, D65), AsShotNeutral the camera response to white under
// the gains (as_shot_red, as_shot_blue) a camera's white balance chose (1/gain).
Status write_dng(const RawMosaic& raw, const CameraOptions& sensor, double as_shot_red, double as_shot_blue,
                 const std::string& path);
// The same DNG as bytes.
Expected<std::vector<std::uint8_t>> encode_dng(const RawMosaic& raw, const CameraOptions& sensor, double as_shot_red,
                                               double as_shot_blue);

// A raw file's mosaic as LibRaw unpacks it: values scaled to [0, 1] between its black and
// white levels, the Bayer pattern from its CFA tags. Fails (corrupt) on a file LibRaw cannot
// read or one that is not a 2x2 Bayer mosaic.
Expected<RawMosaic> decode_raw_mosaic(const std::vector<std::uint8_t>& bytes, const std::string& origin);

}  // namespace edgefleet
