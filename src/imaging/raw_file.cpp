#include "edgefleet/raw_file.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <memory>

#include <libraw/libraw.h>
#include <tiffio.h>

#include "core/scratch_folder.h"
#include "imaging/camera_model.h"

namespace edgefleet {
namespace {

// The CFA pattern tag's colour codes (0 = red, 1 = green, 2 = blue), row by row.
std::vector<std::uint8_t> cfa_pattern(BayerPattern bayer) {
  std::vector<std::uint8_t> pattern;
  for (int y = 0; y < 2; ++y) {
    for (int x = 0; x < 2; ++x) pattern.push_back(static_cast<std::uint8_t>(detail::bayer_channel(bayer, y, x)));
  }
  return pattern;
}

}  // namespace

Status write_dng(const RawMosaic& raw, const CameraOptions& sensor, double as_shot_red, double as_shot_blue,
                 const std::string& path) {
  if (raw.width < 2 || raw.height < 2 || raw.values.size() != static_cast<std::size_t>(raw.width) * raw.height) {
    return invalid_argument("dng: mosaic must be at least 2x2 with one value per photosite");
  }
  if (as_shot_red <= 0 || as_shot_blue <= 0) return invalid_argument("dng: white-balance gains must be positive");
  TIFF* tif = TIFFOpen(path.c_str(), "w");
  if (!tif) return io_error("dng: cannot create " + path);
  const std::uint16_t repeat[2] = {2, 2};
  const std::vector<std::uint8_t> pattern = cfa_pattern(raw.bayer);
  const std::uint8_t version[4] = {1, 4, 0, 0};
  const std::uint32_t white = 65535;
  // XYZ -> camera = (linear sRGB -> camera) x (XYZ -> linear sRGB), as the sensor was simulated.
  const cv::Matx33d xyz_to_camera = detail::rgb_to_camera(sensor.sensor) * detail::srgb_to_xyz().inv();
  float matrix[9];
  for (int i = 0; i < 9; ++i) matrix[i] = static_cast<float>(xyz_to_camera(i / 3, i % 3));
  const float neutral[3] = {static_cast<float>(1.0 / as_shot_red), 1.0f, static_cast<float>(1.0 / as_shot_blue)};
  TIFFSetField(tif, TIFFTAG_SUBFILETYPE, 0);
  TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, static_cast<std::uint32_t>(raw.width));
  TIFFSetField(tif, TIFFTAG_IMAGELENGTH, static_cast<std::uint32_t>(raw.height));
  TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 16);
  TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 1);
  TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_NONE);
  TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_CFA);
  TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
  TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, static_cast<std::uint32_t>(raw.height));
  TIFFSetField(tif, TIFFTAG_MAKE, "edgefleet");
  TIFFSetField(tif, TIFFTAG_MODEL, "virtual sensor");
  TIFFSetField(tif, TIFFTAG_CFAREPEATPATTERNDIM, repeat);
  TIFFSetField(tif, TIFFTAG_CFAPATTERN, 4, pattern.data());
  TIFFSetField(tif, TIFFTAG_DNGVERSION, version);
  TIFFSetField(tif, TIFFTAG_DNGBACKWARDVERSION, version);
  TIFFSetField(tif, TIFFTAG_UNIQUECAMERAMODEL, "edgefleet virtual sensor");
  TIFFSetField(tif, TIFFTAG_WHITELEVEL, 1, &white);
  TIFFSetField(tif, TIFFTAG_COLORMATRIX1, 9, matrix);
  TIFFSetField(tif, TIFFTAG_CALIBRATIONILLUMINANT1, 21);  // D65
  TIFFSetField(tif, TIFFTAG_ASSHOTNEUTRAL, 3, neutral);
  std::vector<std::uint16_t> row(static_cast<std::size_t>(raw.width));
  bool written = true;
  for (int y = 0; y < raw.height && written; ++y) {
    for (int x = 0; x < raw.width; ++x) {
      const float v = raw.values[static_cast<std::size_t>(y) * raw.width + x];
      row[x] = static_cast<std::uint16_t>(std::clamp(v, 0.0f, 1.0f) * 65535.0f + 0.5f);
    }
    written = TIFFWriteScanline(tif, row.data(), static_cast<std::uint32_t>(y), 0) == 1;
  }
  TIFFClose(tif);
  if (!written) return io_error("dng: libtiff could not write the mosaic to " + path);
  return Status::ok();
}

Expected<std::vector<std::uint8_t>> encode_dng(const RawMosaic& raw, const CameraOptions& sensor, double as_shot_red,
                                               double as_shot_blue) {
  const ScratchFolder dir("dng");  // libtiff writes files
  const std::string path = dir.file("raw.dng");
  if (Status s = write_dng(raw, sensor, as_shot_red, as_shot_blue, path); !s.is_ok()) return s;
  std::ifstream in(path, std::ios::binary);
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.empty()) return io_error("dng: cannot read back " + path);
  return bytes;
}

Expected<RawMosaic> decode_raw_mosaic(const std::vector<std::uint8_t>& bytes, const std::string& origin) {
  auto processor = std::make_unique<LibRaw>();
  int rc = processor->open_buffer(const_cast<std::uint8_t*>(bytes.data()), bytes.size());
  if (rc != LIBRAW_SUCCESS) return corrupt(origin + ": not a raw file LibRaw reads (" + libraw_strerror(rc) + ")");
  if ((rc = processor->unpack()) != LIBRAW_SUCCESS) return corrupt(origin + ": LibRaw unpack: " + libraw_strerror(rc));
  const auto& sizes = processor->imgdata.sizes;
  const auto& color = processor->imgdata.color;
  if (!processor->imgdata.rawdata.raw_image || processor->imgdata.idata.filters == 0) {
    return corrupt(origin + ": not a Bayer mosaic");
  }
  RawMosaic raw;
  raw.width = sizes.width & ~1;
  raw.height = sizes.height & ~1;
  // The pattern at the visible area's origin: LibRaw's COLOR() with both greens as green.
  auto channel = [&](int y, int x) {
    const int c = processor->COLOR(y, x);
    return c == 3 ? 1 : c;
  };
  const int c00 = channel(0, 0), c01 = channel(0, 1);
  if (c00 == 0 && c01 == 1) raw.bayer = BayerPattern::kRggb;
  else if (c00 == 2 && c01 == 1) raw.bayer = BayerPattern::kBggr;
  else if (c00 == 1 && c01 == 0) raw.bayer = BayerPattern::kGrbg;
  else if (c00 == 1 && c01 == 2) raw.bayer = BayerPattern::kGbrg;
  else return corrupt(origin + ": CFA pattern is not a 2x2 Bayer pattern");
  const double black = color.black;
  const double range = std::max(1.0, static_cast<double>(color.maximum) - black);
  raw.values.resize(static_cast<std::size_t>(raw.width) * raw.height);
  const std::uint16_t* data = processor->imgdata.rawdata.raw_image;
  const int pitch = processor->imgdata.rawdata.sizes.raw_pitch / 2;
  for (int y = 0; y < raw.height; ++y) {
    for (int x = 0; x < raw.width; ++x) {
      const double v = data[static_cast<std::size_t>(y + sizes.top_margin) * pitch + x + sizes.left_margin];
      raw.values[static_cast<std::size_t>(y) * raw.width + x] = static_cast<float>(std::clamp((v - black) / range, 0.0, 1.0));
    }
  }
  return raw;
}

}  // namespace edgefleet
