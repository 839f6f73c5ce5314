// libjpeg-turbo through its libjpeg API: the TurboJPEG wrapper exposes only the fast and
// accurate integer DCTs, the libjpeg API also the float DCT and the upsampling switch.
#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>


#include "imaging/decoders.h"
#include "imaging/jpeg_errors.h"

namespace edgefleet::detail {
namespace {

void on_message(j_common_ptr cinfo, int level) {
  // level -1 is a warning; premature end of data is the one that means a truncated file.
  auto* errors = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) errors->truncated = true;
}

J_DCT_METHOD dct_method(DctMethod dct) {
  switch (dct) {
    case DctMethod::kIfast: return JDCT_IFAST;
    case DctMethod::kFloat: return JDCT_FLOAT;
    case DctMethod::kIslow: break;
  }
  return JDCT_ISLOW;
}

// Only plain C data lives between each setjmp and its longjmp, so a jump skips no
// destructor. read_header: 0 on success, 1 on a libjpeg error.
int read_header(jpeg_decompress_struct* cinfo, JpegErrorManager* errors, const Bytes& bytes, int* width,
                int* height, int* channels) {
  if (setjmp(errors->jump)) return 1;
  jpeg_mem_src(cinfo, bytes.data(), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(cinfo, TRUE);
  *width = static_cast<int>(cinfo->image_width);
  *height = static_cast<int>(cinfo->image_height);
  const bool cmyk = cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK;
  *channels = cmyk ? 4 : (cinfo->num_components == 1 ? 1 : 3);
  return 0;
}

// Decodes into `pixels`, sized by the caller from the header. 0 on success, 1 on an error.
int read_pixels(jpeg_decompress_struct* cinfo, JpegErrorManager* errors, const DecodeOptions& options,
                std::uint8_t* pixels, std::size_t size, bool* inverted_cmyk) {
  if (setjmp(errors->jump)) return 1;
  const bool cmyk = cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK;
  cinfo->out_color_space = cmyk ? JCS_CMYK : (cinfo->num_components == 1 ? JCS_GRAYSCALE : JCS_RGB);
  cinfo->dct_method = dct_method(options.dct);
  cinfo->do_fancy_upsampling = options.fancy_upsampling ? TRUE : FALSE;
  *inverted_cmyk = cmyk && cinfo->saw_Adobe_marker;
  jpeg_start_decompress(cinfo);
  const std::size_t stride = static_cast<std::size_t>(cinfo->output_width) * cinfo->output_components;
  if (size < stride * cinfo->output_height) return 1;
  JSAMPROW rows[16];
  while (cinfo->output_scanline < cinfo->output_height) {
    // As many rows per call as the decoder produces at once (fewer calls, no re-buffering).
    const JDIMENSION n = std::min<JDIMENSION>(16, cinfo->output_height - cinfo->output_scanline);
    for (JDIMENSION i = 0; i < n; ++i) rows[i] = pixels + stride * (cinfo->output_scanline + i);
    jpeg_read_scanlines(cinfo, rows, n);
  }
  jpeg_finish_decompress(cinfo);
  return 0;
}

Image cmyk_to_rgb(const Image& cmyk, bool inverted) {
  Image rgb;
  rgb.width = cmyk.width;
  rgb.height = cmyk.height;
  rgb.channels = 3;
  const std::size_t n = static_cast<std::size_t>(cmyk.width) * cmyk.height;
  rgb.pixels.resize(n * 3);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint8_t* p = &cmyk.pixels[i * 4];
    // Adobe writes inverted CMYK (255 = no ink); plain CMYK is inverted first.
    const int k = inverted ? p[3] : 255 - p[3];
    for (int c = 0; c < 3; ++c) {
      const int v = inverted ? p[c] : 255 - p[c];
      rgb.pixels[i * 3 + c] = static_cast<std::uint8_t>((v * k + 127) / 255);
    }
  }
  return rgb;
}

}  // namespace

Expected<Image> decode_turbojpeg(const Bytes& bytes, const std::string& origin, const DecodeOptions& options) {
  jpeg_decompress_struct cinfo;
  JpegErrorManager errors;
  cinfo.err = use_error_manager(&errors);
  errors.pub.emit_message = on_message;
  jpeg_create_decompress(&cinfo);
  int width = 0, height = 0, channels = 0;
  if (read_header(&cinfo, &errors, bytes, &width, &height, &channels) != 0) {
    jpeg_destroy_decompress(&cinfo);
    return corrupt(origin + ": not a readable JPEG (" + std::string(errors.message) + ")");
  }
  // Refuse bombs from the header, before the buffer exists.
  if (Status s = check_dimensions(width, height, origin, options.limits); !s.is_ok()) {
    jpeg_destroy_decompress(&cinfo);
    return s;
  }
  Image image;
  image.width = width;
  image.height = height;
  image.channels = channels;
  image.pixels.resize(static_cast<std::size_t>(width) * height * channels);
  bool inverted = false;
  const int rc = read_pixels(&cinfo, &errors, options, image.pixels.data(), image.pixels.size(), &inverted);
  jpeg_destroy_decompress(&cinfo);
  if (rc != 0) return corrupt(origin + ": cannot decode JPEG (" + std::string(errors.message) + ")");
  if (errors.truncated) return corrupt(origin + ": truncated JPEG (premature end of data)");
  if (channels == 4) image = cmyk_to_rgb(image, inverted);
  if (options.apply_orientation) image = apply_orientation(image, exif_orientation(bytes));
  return image;
}

}  // namespace edgefleet::detail
