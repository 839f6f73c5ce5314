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
#include <optional>
#include <string>
#include <vector>

#include "edgefleet/image.h"

namespace edgefleet {

enum class BayerPattern { kRggb, kBggr, kGrbg, kGbrg };
// The ISP: OpenCV's or LibRaw's demosaicing with the shared colour steps, or a real raw
// developer run as a program on the mosaic written as a DNG (dcraw, darktable-cli,
// rawtherapee-cli: their own demosaic, colour, tone and white balance from AsShotNeutral).
enum class IspEngine { kOpenCv, kLibRaw, kDcraw, kDarktable, kRawTherapee };
enum class WhiteBalance { kTrue, kGrayWorld, kNone };  // the scene's gains, estimated, or none
enum class GammaCurve { kSrgb, kBt709 };

// A camera's measured noise level function: the variance of its raw signal x in [0, 1] is
// beta1 * x + beta2 at this ISO.
struct NoiseLevelFunction {
  std::string camera;  // SIDD's code: IP (iPhone 7), GP (Google Pixel), S6 (Galaxy S6 Edge), N6 (Nexus 6), G4 (LG G4)
  int iso = 0;
  double beta1 = 0.0;
  double beta2 = 0.0;
};

// SIDD's calibrations of five phones (Abdelhamed et al., "Noise Flow", ICCV 2019; the table
// BorealisAI/noise_flow publishes as cam_iso_nlf.txt), in the table's order.
const std::vector<NoiseLevelFunction>& sidd_noise_level_functions();

// A Raspberry Pi camera's sensor as its libcamera tuning file publishes it
// (raspberrypi/libcamera, src/ipa/rpi/vc4/data/NAME.json, written by the camera tuning tool):
// rpi.noise, the noise standard deviation = constant + slope * sqrt(mean) in 16-bit raw units
// above the black level at analogue gain 1 (utils/raspberrypi/ctt/ctt_noise.py), and rpi.ccm,
// the camera RGB -> linear sRGB matrices the ISP interpolates by colour temperature.
struct LibcameraSensor {
  std::string name;    // the tuning file's name, e.g. "imx219"
  std::string camera;  // the product it is in
  double black_level_16 = 0;
  double noise_constant = 0, noise_slope = 0;
  std::vector<std::pair<double, std::vector<double>>> ccms;  // (kelvin, 3x3 row-major), by kelvin
};
const std::vector<LibcameraSensor>& libcamera_sensors();

// A measured noise level function: SIDD's (camera code, ISO) rows, or a libcamera sensor by
// name at ISO 100 (analogue gain 1, as the tuning tool normalises ISO / 100), converted to
// [0, 1] raw units: beta1 = slope^2 / range, beta2 = constant^2 / range^2 (range = 65535 -
// black level; the cross term of a non-zero constant is left out). Fails (invalid_argument)
// naming the measured cameras or ISOs when there is no such row.
Expected<NoiseLevelFunction> find_noise_level_function(const std::string& camera, int iso);

// How many measured colour matrices `CameraOptions::sensor` chooses from: the four XYZ ->
// camera matrices of Brooks et al.'s unprocessing code (google-research/unprocessing,
// unprocess.py), 0-3, then libcamera_sensors() in order, whose camera -> sRGB matrix is their
// tuning file's CCM interpolated to D65 (6504 K, the sRGB scenes' white) as libcamera does.
constexpr int kUnprocessingSensors = 4;
int sensor_matrix_count();
// The sensor index of a libcamera sensor's name or of "0".."3"; fails naming the choices.
Expected<int> parse_sensor(const std::string& text);
// "imx219" for a libcamera sensor, the index otherwise.
std::string sensor_name(int sensor);

struct CameraOptions {
  // Sensor (used to unprocess the scene).
  BayerPattern bayer = BayerPattern::kRggb;
  int sensor = 0;           // which measured colour matrix (0 .. sensor_matrix_count() - 1)
  double red_gain = 2.0;    // white-balance gains of the scene illuminant
  double blue_gain = 1.6;
  double shot_noise = 0.0;  // noise variance = shot_noise * signal + read_noise (linear, [0,1])
  double read_noise = 0.0;
  // When set, shot_noise and read_noise are this measured function's beta1 and beta2 (the
  // pipeline spec's nlf=CAMERA,iso=N fills all three).
  std::optional<NoiseLevelFunction> noise_level_function;
  // The sensor's resolution relative to the picture: a phone resolves the picture with
  // K = photosites * fill / (the picture's shorter side) photosites per pixel along each side
  // (photosites: the sensor's shorter side; fill: the share of the frame's shorter side the
  // picture covers), and the model sees the photo downscaled, so each pixel averages K x K
  // photosites and the noise variance falls by K^2. 0 = one photosite per pixel.
  int photosites = 0;
  double fill = 1.0;
  // With photosites: simulate the mosaic at up to this many photosites per pixel along each
  // side (the screen's picture upscaled, demosaiced there, then area-downscaled back), so
  // demosaicing artefacts are as small relative to the picture as on the phone; the rest of
  // the factor K only averages noise. 1 = at the picture's own resolution.
  int oversample = 1;
  std::uint64_t seed = 0;   // with the image content, seeds the noise

  // ISP (used to re-process the raw).
  IspEngine isp = IspEngine::kOpenCv;
  std::string demosaic = "bilinear";  // opencv: bilinear vng ea; libraw: linear vng ppg ahd dcb dht aahd;
                                      // dcraw: ahd bilinear vng ppg; darktable, rawtherapee: default
  WhiteBalance white_balance = WhiteBalance::kTrue;
  bool color_matrix = true;  // camera RGB -> sRGB; off leaves camera colours
  GammaCurve gamma = GammaCurve::kSrgb;
  bool tone_curve = true;    // the smoothstep tone curve unprocessing inverted
  double denoise = 0.0;      // 0 = off, else OpenCV fastNlMeans strength h
  double sharpen = 0.0;      // 0 = off, else unsharp-mask amount
};

const std::vector<std::string>& demosaic_methods(IspEngine isp);
const char* isp_engine_name(IspEngine isp);  // opencv libraw dcraw darktable rawtherapee
// "dcraw 9.28": the installed version of a raw developer (empty for opencv/libraw), or an
// error naming the missing program.
Expected<std::string> raw_developer_version(IspEngine isp);

// `sensor`'s sensor (pattern, matrix, gains, noise, resolution, seed) developed by `isp`'s ISP
// (engine, demosaic, white balance, colour matrix, gamma, tone curve, denoise, sharpen): every
// phone's raw through one common ISP (the instability paper's §9.2).
CameraOptions with_isp_of(const CameraOptions& sensor, const CameraOptions& isp);

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
