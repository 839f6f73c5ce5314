// Virtual camera: stands in for a phone's sensor and ISP (instability paper §3, §6, §9.2).
// An sRGB image is "unprocessed" to linear raw (inverse tone curve, inverse gamma, inverse
// colour correction, inverse white balance, Bayer mosaic; Brooks et al. 2019), sensor noise
// is added (shot + read), and an ISP chosen per device re-processes it: demosaic (OpenCV
// bilinear / VNG / edge-aware, or LibRaw's linear / VNG / PPG / AHD / DCB / DHT / AAHD),
// white balance, colour matrix, gamma, tone curve, denoise, sharpen. Two devices that differ
// only in ISP give visibly similar but numerically different pictures. Deterministic for a
// given image and options (the noise is seeded). Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "edgefleet/image.h"

namespace edgefleet {

enum class BayerPattern { kRggb, kBggr, kGrbg, kGbrg };
enum class IspEngine { kOpenCv, kLibRaw };
enum class WhiteBalance { kTrue, kGrayWorld, kNone };  // the scene's gains, estimated, or none
enum class GammaCurve { kSrgb, kBt709 };

struct CameraOptions {
  // Sensor (used to unprocess the scene).
  BayerPattern bayer = BayerPattern::kRggb;
  double red_gain = 2.0;    // white-balance gains of the scene illuminant
  double blue_gain = 1.6;
  double shot_noise = 0.0;  // noise variance = shot_noise * signal + read_noise (linear, [0,1])
  double read_noise = 0.0;
  std::uint64_t seed = 0;   // with the image content, seeds the noise

  // ISP (used to re-process the raw).
  IspEngine isp = IspEngine::kOpenCv;
  std::string demosaic = "bilinear";  // opencv: bilinear vng ea; libraw: linear vng ppg ahd dcb dht aahd
  WhiteBalance white_balance = WhiteBalance::kTrue;
  bool color_matrix = true;  // camera RGB -> sRGB; off leaves camera colours
  GammaCurve gamma = GammaCurve::kSrgb;
  bool tone_curve = true;    // the smoothstep tone curve unprocessing inverted
  double denoise = 0.0;      // 0 = off, else OpenCV fastNlMeans strength h
  double sharpen = 0.0;      // 0 = off, else unsharp-mask amount
};

const std::vector<std::string>& demosaic_methods(IspEngine isp);

// Linear raw sensor data: one value per photosite in [0, 1], laid out in `bayer` order.
struct RawMosaic {
  int width = 0;   // even
  int height = 0;  // even
  BayerPattern bayer = BayerPattern::kRggb;
  std::vector<float> values;  // height * width
};

// sRGB image -> noisy linear raw mosaic (odd sizes are cropped by one pixel to be even).
Expected<RawMosaic> unprocess_to_raw(const Image& srgb, const CameraOptions& options);

// Raw mosaic -> sRGB image through the ISP of `options`.
Expected<Image> process_raw(const RawMosaic& raw, const CameraOptions& options);

// Both: the picture this device's camera would have produced of the scene in `srgb`, with the
// scene's size (odd sides are padded for the mosaic and cut back).
Expected<Image> simulate_camera(const Image& srgb, const CameraOptions& options);

}  // namespace edgefleet
