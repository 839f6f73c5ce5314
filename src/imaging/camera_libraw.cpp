// The LibRaw ISP: LibRaw's demosaicing and white balance run on the virtual sensor's mosaic,
// handed over as a 16-bit little-endian Bayer dump (open_bayer). A Bayer dump carries no
// camera profile, and LibRaw then converts no colours, so LibRaw returns linear camera RGB
// and the colour matrix, gamma and tone steps are the shared ones.
#include <cstring>
#include <memory>

#include <libraw/libraw.h>

#include "imaging/camera_model.h"
#include "imaging/libraw_image.h"
#include "imaging/opencv_image.h"

namespace edgefleet::detail {
namespace {

unsigned char libraw_pattern(BayerPattern bayer) {
  switch (bayer) {
    case BayerPattern::kBggr: return LIBRAW_OPENBAYER_BGGR;
    case BayerPattern::kGrbg: return LIBRAW_OPENBAYER_GRBG;
    case BayerPattern::kGbrg: return LIBRAW_OPENBAYER_GBRG;
    case BayerPattern::kRggb: break;
  }
  return LIBRAW_OPENBAYER_RGGB;
}

int libraw_quality(const std::string& demosaic) {
  if (demosaic == "linear") return 0;
  if (demosaic == "vng") return 1;
  if (demosaic == "ppg") return 2;
  if (demosaic == "ahd") return 3;
  if (demosaic == "dcb") return 4;
  if (demosaic == "dht") return 11;
  return 12;  // aahd
}

}  // namespace

Expected<Image> process_raw_libraw(const RawMosaic& raw, const CameraOptions& options) {
  if (raw.width > 65535 || raw.height > 65535) return invalid_argument("camera: LibRaw takes at most 65535 pixels a side");
  std::vector<std::uint8_t> dump(raw.values.size() * 2);
  for (std::size_t i = 0; i < raw.values.size(); ++i) {
    const auto v = static_cast<std::uint16_t>(raw.values[i] * 65535.0f + 0.5f);
    dump[2 * i] = static_cast<std::uint8_t>(v & 0xFF);
    dump[2 * i + 1] = static_cast<std::uint8_t>(v >> 8);
  }
  auto processor = std::make_unique<LibRaw>();
  auto fail = [](const char* step, int rc) {
    return internal_error(std::string("camera: LibRaw ") + step + ": " + libraw_strerror(rc));
  };
  int rc = processor->open_bayer(dump.data(), static_cast<unsigned>(dump.size()), static_cast<ushort>(raw.width),
                                 static_cast<ushort>(raw.height), 0, 0, 0, 0, 0, libraw_pattern(raw.bayer), 0, 0, 0);
  if (rc != LIBRAW_SUCCESS) return fail("open_bayer", rc);
  if ((rc = processor->unpack()) != LIBRAW_SUCCESS) return fail("unpack", rc);

  libraw_output_params_t& params = processor->imgdata.params;
  params.user_qual = libraw_quality(options.demosaic);
  params.output_bps = 16;
  params.gamm[0] = 1.0;  // linear output
  params.gamm[1] = 1.0;
  params.no_auto_bright = 1;
  params.use_camera_wb = 0;
  params.use_auto_wb = 0;
  params.highlight = 0;  // clip
  params.output_color = 0;  // camera colours
  double red = 1, blue = 1;
  isp_gains(raw, options, &red, &blue);
  params.user_mul[0] = static_cast<float>(red);
  params.user_mul[1] = 1.0f;
  params.user_mul[2] = static_cast<float>(blue);
  params.user_mul[3] = 1.0f;
  if ((rc = processor->dcraw_process()) != LIBRAW_SUCCESS) return fail("dcraw_process", rc);
  int error = 0;
  LibRawImage processed(processor->dcraw_make_mem_image(&error));
  if (!processed) return fail("dcraw_make_mem_image", error);
  if (processed->type != LIBRAW_IMAGE_BITMAP || processed->colors != 3 || processed->bits != 16) {
    return internal_error("camera: LibRaw returned an unexpected image layout");
  }
  cv::Mat rgb16(processed->height, processed->width, CV_16UC3, processed->data);
  cv::Mat rgb;
  rgb16.convertTo(rgb, CV_32F, 1.0 / 65535.0);
  return render_linear_rgb(rgb, 1.0, 1.0, options);  // LibRaw applied the gains
}

}  // namespace edgefleet::detail
