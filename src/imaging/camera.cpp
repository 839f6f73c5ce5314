#include "edgefleet/camera.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <opencv2/imgproc.hpp>
#include <opencv2/photo.hpp>

#include "imaging/camera_model.h"
#include "imaging/opencv_image.h"

namespace edgefleet {
namespace {

double linear_to_bt709(double v) { return v < 0.018 ? 4.5 * v : 1.099 * std::pow(v, 0.45) - 0.099; }

}  // namespace

namespace detail {

double srgb_to_linear(double v) { return v <= 0.04045 ? v / 12.92 : std::pow((v + 0.055) / 1.055, 2.4); }
double linear_to_srgb(double v) { return v <= 0.0031308 ? 12.92 * v : 1.055 * std::pow(v, 1.0 / 2.4) - 0.055; }

cv::Matx33d srgb_to_xyz() {
  return {0.4124564, 0.3575761, 0.1804375, 0.2126729, 0.7151522, 0.0721750, 0.0193339, 0.1191920, 0.9503041};
}

// A libcamera sensor's camera -> sRGB matrix at `kelvin`: its CCMs interpolated linearly in
// colour temperature, clamped at the ends (libcamera's rpi.ccm does the same).
cv::Matx33d libcamera_ccm(const LibcameraSensor& sensor, double kelvin) {
  const auto& ccms = sensor.ccms;
  std::size_t hi = 0;
  while (hi < ccms.size() && ccms[hi].first < kelvin) ++hi;
  const std::size_t lo = hi == 0 ? 0 : hi - 1;
  hi = std::min(hi, ccms.size() - 1);
  const double t = hi == lo ? 0.0 : (kelvin - ccms[lo].first) / (ccms[hi].first - ccms[lo].first);
  cv::Matx33d m;
  for (int i = 0; i < 9; ++i) m(i / 3, i % 3) = (1 - t) * ccms[lo].second[i] + t * ccms[hi].second[i];
  return m;
}

cv::Matx33d rgb_to_camera(int sensor) {
  // XYZ -> camera of the four measured sensors in Brooks et al.'s unprocessing code
  // (google-research/unprocessing, unprocess.py: random_ccm), and sRGB -> XYZ (D65).
  static const cv::Matx33d kXyzToCamera[kUnprocessingSensors] = {
      {1.0234, -0.2969, -0.2266, -0.5625, 1.6328, -0.0469, -0.0703, 0.2188, 0.6406},
      {0.4913, -0.0541, -0.0202, -0.613, 1.3513, 0.2906, -0.1564, 0.2151, 0.7183},
      {0.838, -0.263, -0.0639, -0.2887, 1.0725, 0.2496, -0.0627, 0.1427, 0.5438},
      {0.6596, -0.2079, -0.0562, -0.4782, 1.3016, 0.1933, -0.097, 0.1581, 0.5181}};
  sensor = std::clamp(sensor, 0, sensor_matrix_count() - 1);
  // A libcamera sensor: the inverse of its CCM at the sRGB scenes' white (D65, 6504 K).
  cv::Matx33d m = sensor < kUnprocessingSensors ? kXyzToCamera[sensor] * srgb_to_xyz()
                                                 : libcamera_ccm(libcamera_sensors()[sensor - kUnprocessingSensors], 6504).inv();
  for (int r = 0; r < 3; ++r) {
    const double sum = m(r, 0) + m(r, 1) + m(r, 2);
    for (int c = 0; c < 3; ++c) m(r, c) /= sum;  // white stays white
  }
  return m;
}

cv::Matx33d camera_to_rgb(int sensor) { return rgb_to_camera(sensor).inv(); }

int bayer_channel(BayerPattern bayer, int y, int x) {
  static const int kLayouts[4][4] = {{0, 1, 1, 2}, {2, 1, 1, 0}, {1, 0, 2, 1}, {1, 2, 0, 1}};  // RGGB BGGR GRBG GBRG
  return kLayouts[static_cast<int>(bayer)][(y & 1) * 2 + (x & 1)];
}

void isp_gains(const RawMosaic& raw, const CameraOptions& options, double* red, double* blue) {
  *red = 1.0;
  *blue = 1.0;
  if (options.white_balance == WhiteBalance::kTrue) {
    *red = options.red_gain;
    *blue = options.blue_gain;
  } else if (options.white_balance == WhiteBalance::kGrayWorld) {
    double sum[3] = {0, 0, 0};
    double count[3] = {0, 0, 0};
    for (int y = 0; y < raw.height; ++y) {
      const float* row = &raw.values[static_cast<std::size_t>(y) * raw.width];
      for (int start = 0; start < 2; ++start) {  // the row's two channels alternate
        float partial = 0;
        for (int x = start; x < raw.width; x += 2) partial += row[x];
        const int c = bayer_channel(raw.bayer, y, start);
        sum[c] += partial;
        count[c] += raw.width / 2;
      }
    }
    const double g = sum[1] / std::max(1.0, count[1]);
    if (sum[0] > 0) *red = g / (sum[0] / count[0]);
    if (sum[2] > 0) *blue = g / (sum[2] / count[2]);
  }
}

Image render_linear_rgb(cv::Mat rgb, double red_gain, double blue_gain, const CameraOptions& options) {
  cv::Matx33d m = cv::Matx33d::diag(cv::Vec3d(red_gain, 1.0, blue_gain));
  if (options.color_matrix) m = camera_to_rgb(options.sensor) * m;
  cv::transform(rgb, rgb, cv::Mat(cv::Matx33f(m)));
  float lut[4096];  // gamma through a fine table: exact to 8 bits, much faster than pow
  for (int i = 0; i < 4096; ++i) {
    const double v = i / 4095.0;
    lut[i] = static_cast<float>(options.gamma == GammaCurve::kBt709 ? linear_to_bt709(v) : linear_to_srgb(v));
  }
  cv::Mat rgb8(rgb.size(), CV_8UC3);
  for (int y = 0; y < rgb.rows; ++y) {
    const float* in = rgb.ptr<float>(y);
    std::uint8_t* out = rgb8.ptr<std::uint8_t>(y);
    for (int i = 0; i < rgb.cols * 3; ++i) {
      const float v = std::clamp(in[i], 0.0f, 1.0f);
      out[i] = cv::saturate_cast<std::uint8_t>(lut[static_cast<int>(v * 4095.0f + 0.5f)] * 255.0f);
    }
  }
  return image_from_mat(finish_isp(rgb8, options));
}

cv::Mat finish_isp(cv::Mat rgb8, const CameraOptions& options) {
  if (options.tone_curve) {
    cv::Mat lut(1, 256, CV_8U);
    for (int i = 0; i < 256; ++i) {
      const double x = i / 255.0;
      lut.at<std::uint8_t>(i) = cv::saturate_cast<std::uint8_t>((3 * x * x - 2 * x * x * x) * 255.0);
    }
    cv::LUT(rgb8, lut, rgb8);
  }
  if (options.denoise > 0) {
    cv::Mat out;
    cv::fastNlMeansDenoisingColored(rgb8, out, static_cast<float>(options.denoise), static_cast<float>(options.denoise));
    rgb8 = out;
  }
  if (options.sharpen > 0) {
    cv::Mat blurred;
    cv::GaussianBlur(rgb8, blurred, cv::Size(0, 0), 1.0);
    cv::Mat out;
    cv::addWeighted(rgb8, 1.0 + options.sharpen, blurred, -options.sharpen, 0.0, out);
    rgb8 = out;
  }
  return rgb8;
}

}  // namespace detail

namespace {


Status check_sensor(const CameraOptions& options) {
  if (options.sensor >= 0 && options.sensor < sensor_matrix_count()) return Status::ok();
  return invalid_argument("camera: sensor " + std::to_string(options.sensor) + " is not 0.." + std::to_string(sensor_matrix_count() - 1));
}

// K: the photosites the sensor spends on one pixel of a width x height picture, along a side.
double photosites_per_pixel(const CameraOptions& options, int width, int height) {
  return options.photosites * options.fill / std::min(width, height);
}

std::uint64_t content_hash(const Image& image) {
  // Eight bytes per step (a 64-bit multiply-xorshift mix): a seed, not a checksum, and the
  // upscaled scene is megabytes.
  std::uint64_t h = 1469598103934665603ULL ^ (static_cast<std::uint64_t>(image.width) << 32) ^
                    static_cast<std::uint64_t>(image.height);
  const std::uint8_t* bytes = image.pixels.data();
  const std::size_t n = image.pixels.size();
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t word;
    std::memcpy(&word, bytes + i, 8);
    h = (h ^ word) * 0x9E3779B97F4A7C15ULL;
    h ^= h >> 29;
  }
  for (; i < n; ++i) h = (h ^ bytes[i]) * 1099511628211ULL;
  return h;
}

int opencv_bayer_code(BayerPattern bayer, const std::string& demosaic) {
  // OpenCV names a pattern by the 2x2 block at row 1, column 1: RGGB is "BG".
  static const int kBilinear[] = {cv::COLOR_BayerBG2RGB, cv::COLOR_BayerRG2RGB, cv::COLOR_BayerGB2RGB, cv::COLOR_BayerGR2RGB};
  static const int kVng[] = {cv::COLOR_BayerBG2RGB_VNG, cv::COLOR_BayerRG2RGB_VNG, cv::COLOR_BayerGB2RGB_VNG,
                             cv::COLOR_BayerGR2RGB_VNG};
  static const int kEa[] = {cv::COLOR_BayerBG2RGB_EA, cv::COLOR_BayerRG2RGB_EA, cv::COLOR_BayerGB2RGB_EA,
                            cv::COLOR_BayerGR2RGB_EA};
  const int i = static_cast<int>(bayer);
  if (demosaic == "vng") return kVng[i];
  if (demosaic == "ea") return kEa[i];
  return kBilinear[i];
}

Expected<Image> process_raw_opencv(const RawMosaic& raw, const CameraOptions& options) {
  const cv::Mat values(raw.height, raw.width, CV_32F, const_cast<float*>(raw.values.data()));
  cv::Mat rgb;
  if (options.demosaic == "vng") {
    // OpenCV's VNG reads 8-bit mosaics only: compand with a square root (as 8-bit sensor
    // outputs do) so the shadows keep their levels, demosaic, then expand.
    cv::Mat companded;
    cv::sqrt(values, companded);
    companded.convertTo(companded, CV_8U, 255.0);
    cv::cvtColor(companded, rgb, opencv_bayer_code(raw.bayer, options.demosaic));
    rgb.convertTo(rgb, CV_32F, 1.0 / 255.0);
    rgb = rgb.mul(rgb);
  } else {
    cv::Mat mosaic16;
    values.convertTo(mosaic16, CV_16U, 65535.0);
    cv::cvtColor(mosaic16, rgb, opencv_bayer_code(raw.bayer, options.demosaic));
    rgb.convertTo(rgb, CV_32F, 1.0 / 65535.0);
  }
  double red = 1, blue = 1;
  detail::isp_gains(raw, options, &red, &blue);
  return detail::render_linear_rgb(rgb, red, blue, options);
}

}  // namespace

const std::vector<NoiseLevelFunction>& sidd_noise_level_functions() {
  // BorealisAI/noise_flow, cam_iso_nlf.txt (SIDD), as published: camera, ISO, beta1, beta2.
  static const std::vector<NoiseLevelFunction> kTable = {
      {"IP", 100, 0.000702, 0.000003}, {"IP", 400, 0.000735, 0.000003}, {"IP", 800, 0.000723, 0.000003},
      {"IP", 1600, 0.000687, 0.000002}, {"GP", 100, 0.000228, 0.000002}, {"GP", 800, 0.001764, 0.000012},
      {"S6", 100, 0.000479, 0.000002}, {"S6", 400, 0.001774, 0.000002}, {"S6", 800, 0.003696, 0.000002},
      {"S6", 1600, 0.008211, 0.000002}, {"S6", 3200, 0.019930, 0.000002}, {"N6", 100, 0.000473, 0.000003},
      {"N6", 800, 0.003476, 0.000052}, {"G4", 100, 0.000739, 0.000002}, {"G4", 800, 0.003356, 0.000063}};
  return kTable;
}

const std::vector<LibcameraSensor>& libcamera_sensors() {
  // raspberrypi/libcamera src/ipa/rpi/vc4/data/imx219.json, as published: rpi.black_level,
  // rpi.noise, rpi.ccm.
  static const std::vector<LibcameraSensor> kSensors = {
      {"imx219",
       "Raspberry Pi Camera Module 2 (Sony IMX219)",
       4096,
       0,
       3.67,
       {{2860, {2.12089, -0.52461, -0.59629, -0.85342, 2.80445, -0.95103, -0.26897, -1.14788, 2.41685}},
        {2960, {2.26962, -0.54174, -0.72789, -0.77008, 2.60271, -0.83262, -0.26036, -1.51254, 2.77289}},
        {3603, {2.18644, -0.66148, -0.52496, -0.77828, 2.69474, -0.91645, -0.25239, -0.83059, 2.08298}},
        {4650, {2.18174, -0.70887, -0.47287, -0.70196, 2.76426, -1.06231, -0.25157, -0.71978, 1.97135}},
        {5858, {2.32392, -0.88421, -0.43971, -0.63821, 2.58348, -0.94527, -0.28541, -0.54112, 1.82653}},
        {7580, {2.21175, -0.53242, -0.67933, -0.57875, 3.07922, -1.50047, -0.27709, -0.73338, 2.01048}}}}};
  return kSensors;
}

int sensor_matrix_count() { return kUnprocessingSensors + static_cast<int>(libcamera_sensors().size()); }

Expected<int> parse_sensor(const std::string& text) {
  std::string names;
  for (std::size_t i = 0; i < libcamera_sensors().size(); ++i) {
    if (libcamera_sensors()[i].name == text) return kUnprocessingSensors + static_cast<int>(i);
    names += ", " + libcamera_sensors()[i].name;
  }
  for (int i = 0; i < kUnprocessingSensors; ++i) {
    if (text == std::to_string(i)) return i;
  }
  return invalid_argument("sensor '" + text + "' is not 0.." + std::to_string(kUnprocessingSensors - 1) +
                          " (unprocessing's matrices) or a libcamera sensor (" + names.substr(2) + ")");
}

std::string sensor_name(int sensor) {
  if (sensor >= kUnprocessingSensors && sensor < sensor_matrix_count()) return libcamera_sensors()[sensor - kUnprocessingSensors].name;
  return std::to_string(sensor);
}

Expected<NoiseLevelFunction> find_noise_level_function(const std::string& camera, int iso) {
  for (const auto& sensor : libcamera_sensors()) {
    if (sensor.name != camera) continue;
    if (iso != 100) return invalid_argument("libcamera's " + camera + " noise profile is at analogue gain 1 (ISO 100), not ISO " + std::to_string(iso));
    const double range = 65535.0 - sensor.black_level_16;
    return NoiseLevelFunction{camera, 100, sensor.noise_slope * sensor.noise_slope / range,
                              sensor.noise_constant * sensor.noise_constant / (range * range)};
  }
  std::string cameras, isos;
  for (const auto& row : sidd_noise_level_functions()) {
    if (row.camera == camera && row.iso == iso) return row;
    if (cameras.find(row.camera) == std::string::npos) cameras += (cameras.empty() ? "" : ", ") + row.camera;
    if (row.camera == camera) isos += (isos.empty() ? "" : ", ") + std::to_string(row.iso);
  }
  for (const auto& sensor : libcamera_sensors()) cameras += ", " + sensor.name + " (libcamera)";
  if (isos.empty()) return invalid_argument("no noise calibration for camera '" + camera + "' (measured: " + cameras + ")");
  return invalid_argument("SIDD measured camera " + camera + " at ISO " + isos + ", not " + std::to_string(iso));
}

CameraOptions with_isp_of(const CameraOptions& sensor, const CameraOptions& isp) {
  CameraOptions out = sensor;
  out.isp = isp.isp;
  out.demosaic = isp.demosaic;
  out.white_balance = isp.white_balance;
  out.color_matrix = isp.color_matrix;
  out.gamma = isp.gamma;
  out.tone_curve = isp.tone_curve;
  out.denoise = isp.denoise;
  out.sharpen = isp.sharpen;
  return out;
}

const std::vector<std::string>& demosaic_methods(IspEngine isp) {
  static const std::vector<std::string> kOpenCv = {"bilinear", "vng", "ea"};
  static const std::vector<std::string> kLibRaw = {"linear", "vng", "ppg", "ahd", "dcb", "dht", "aahd"};
  static const std::vector<std::string> kDcraw = {"ahd", "bilinear", "vng", "ppg"};
  static const std::vector<std::string> kDefault = {"default"};
  switch (isp) {
    case IspEngine::kLibRaw: return kLibRaw;
    case IspEngine::kDcraw: return kDcraw;
    case IspEngine::kDarktable:
    case IspEngine::kRawTherapee: return kDefault;
    default: return kOpenCv;
  }
}

const char* isp_engine_name(IspEngine isp) {
  switch (isp) {
    case IspEngine::kLibRaw: return "libraw";
    case IspEngine::kDcraw: return "dcraw";
    case IspEngine::kDarktable: return "darktable";
    case IspEngine::kRawTherapee: return "rawtherapee";
    default: return "opencv";
  }
}

Expected<RawMosaic> unprocess_to_raw(const Image& srgb, const CameraOptions& options) {
  if (srgb.empty() || srgb.width < 2 || srgb.height < 2) return invalid_argument("camera: image smaller than 2x2");
  if (srgb.channels != 3 && srgb.channels != 1) {
    return invalid_argument("camera: " + std::to_string(srgb.channels) + " channels, expected RGB or gray");
  }
  if (options.red_gain <= 0 || options.blue_gain <= 0) return invalid_argument("camera: gains must be positive");
  if (options.shot_noise < 0 || options.read_noise < 0) return invalid_argument("camera: noise must not be negative");
  if (options.photosites < 0 || !(options.fill > 0 && options.fill <= 1)) {
    return invalid_argument("camera: photosites must not be negative and fill must be in (0, 1]");
  }
  if (Status s = check_sensor(options); !s.is_ok()) return s;
  RawMosaic raw;
  raw.width = srgb.width & ~1;
  raw.height = srgb.height & ~1;
  raw.bayer = options.bayer;
  raw.values.resize(static_cast<std::size_t>(raw.width) * raw.height);

  // Per 8-bit level: inverse tone curve (smoothstep), then inverse sRGB gamma.
  float linear[256];
  for (int i = 0; i < 256; ++i) {
    const double y = i / 255.0;
    const double untoned = 0.5 - std::sin(std::asin(1.0 - 2.0 * y) / 3.0);
    linear[i] = static_cast<float>(detail::srgb_to_linear(std::clamp(untoned, 0.0, 1.0)));
  }
  // Each camera channel's row of sRGB -> camera, with the inverse white balance folded in.
  const cv::Matx33d to_camera = detail::rgb_to_camera(options.sensor);
  const double inverse_gain[3] = {1.0 / options.red_gain, 1.0, 1.0 / options.blue_gain};
  float weights[3][3];
  for (int c = 0; c < 3; ++c) {
    for (int k = 0; k < 3; ++k) weights[c][k] = static_cast<float>(to_camera(c, k) * inverse_gain[c]);
  }
  // Standard normal draws from OpenCV's generator (a row at a time, seeded by the content and
  // the session): several times faster than std::normal_distribution, which dominated.
  cv::RNG rng(content_hash(srgb) ^ (options.seed * 0x9E3779B97F4A7C15ULL));
  const bool noisy = options.shot_noise > 0 || options.read_noise > 0;
  const double k = photosites_per_pixel(options, srgb.width, srgb.height);
  const double binning = k > 1 ? 1.0 / (k * k) : 1.0;
  const float shot = static_cast<float>(options.shot_noise * binning);
  const float read = static_cast<float>(options.read_noise * binning);
  cv::Mat gaussian(1, raw.width, CV_32F, cv::Scalar(0));
  const int step = srgb.channels;
  const int g = srgb.channels == 3 ? 1 : 0, b = srgb.channels == 3 ? 2 : 0;
  for (int y = 0; y < raw.height; ++y) {
    const std::uint8_t* p = &srgb.pixels[static_cast<std::size_t>(y) * srgb.width * step];
    float* out = &raw.values[static_cast<std::size_t>(y) * raw.width];
    const float* row_weights[2] = {weights[detail::bayer_channel(options.bayer, y, 0)],
                                   weights[detail::bayer_channel(options.bayer, y, 1)]};
    if (noisy) rng.fill(gaussian, cv::RNG::NORMAL, 0.0, 1.0);
    const float* n = gaussian.ptr<float>();
    for (int x = 0; x < raw.width; ++x, p += step) {
      const float* w = row_weights[x & 1];
      float v = std::clamp(w[0] * linear[p[0]] + w[1] * linear[p[g]] + w[2] * linear[p[b]], 0.0f, 1.0f);
      if (noisy) v += n[x] * std::sqrt(shot * v + read);
      out[x] = std::clamp(v, 0.0f, 1.0f);
    }
  }
  return raw;
}

Expected<Image> process_raw(const RawMosaic& raw, const CameraOptions& options) {
  if (raw.width < 2 || raw.height < 2 || (raw.width & 1) || (raw.height & 1) ||
      raw.values.size() != static_cast<std::size_t>(raw.width) * raw.height) {
    return invalid_argument("camera: raw mosaic must be at least 2x2, even-sized, with one value per photosite");
  }
  const auto& methods = demosaic_methods(options.isp);
  if (std::find(methods.begin(), methods.end(), options.demosaic) == methods.end()) {
    return invalid_argument("camera: demosaic '" + options.demosaic + "' is not one of the " +
                            isp_engine_name(options.isp) + " ISP's methods");
  }
  if (options.denoise < 0 || options.sharpen < 0) return invalid_argument("camera: denoise and sharpen must not be negative");
  if (Status s = check_sensor(options); !s.is_ok()) return s;
  if (options.isp == IspEngine::kLibRaw) return detail::process_raw_libraw(raw, options);
  if (options.isp != IspEngine::kOpenCv) return detail::process_raw_developer(raw, options);
  try {
    return process_raw_opencv(raw, options);
  } catch (const cv::Exception& e) {
    return internal_error("camera: OpenCV ISP: " + first_meaningful_line(e.what()));
  }
}

Expected<Image> simulate_camera(const Image& srgb, const CameraOptions& options) {
  if (srgb.empty() || srgb.width < 2 || srgb.height < 2) return invalid_argument("camera: image smaller than 2x2");
  // A Bayer mosaic has even sides: replicate the last column/row of an odd-sized scene and cut
  // it off again, so the camera never shifts the picture's geometry.
  const int pad_x = srgb.width & 1;
  const int pad_y = srgb.height & 1;
  Image scene = srgb;
  if (pad_x || pad_y) {
    cv::Mat padded;
    cv::copyMakeBorder(mat_view(srgb), padded, 0, pad_y, 0, pad_x, cv::BORDER_REPLICATE);
    scene = image_from_mat(padded);
  }
  if (options.oversample < 1) return invalid_argument("camera: oversample must be at least 1");
  const int oversample = std::clamp(static_cast<int>(photosites_per_pixel(options, srgb.width, srgb.height)), 1, options.oversample);
  const int scene_width = scene.width, scene_height = scene.height;
  if (oversample > 1) {
    cv::Mat larger;
    cv::resize(mat_view(scene), larger, cv::Size(scene_width * oversample, scene_height * oversample), 0, 0, cv::INTER_LINEAR);
    scene = image_from_mat(larger);
  }
  auto raw = unprocess_to_raw(scene, options);
  if (!raw) return raw.status();
  auto picture = process_raw(*raw, options);
  if (!picture) return picture;
  cv::Mat out = mat_view(*picture);
  if (oversample > 1) {
    cv::Mat smaller;
    cv::resize(out, smaller, cv::Size(scene_width, scene_height), 0, 0, cv::INTER_AREA);
    out = smaller;
  }
  if (oversample == 1 && !pad_x && !pad_y) return picture;
  return image_from_mat(out(cv::Rect(0, 0, srgb.width, srgb.height)));
}

}  // namespace edgefleet
