// libjpeg-turbo through its libjpeg API: the TurboJPEG wrapper exposes only the fast and
// accurate integer DCTs, the libjpeg API also the float DCT and the upsampling switch.
#include <csetjmp>
#include <cstdio>
#include <cstring>

#include <jpeglib.h>
#include <jerror.h>

#include "imaging/decoders.h"

namespace edgefleet::detail {
namespace {

// libjpeg reports fatal errors through error_exit, which must not return: jump back out.
struct JpegErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = {};
  bool truncated = false;
};

void on_error_exit(j_common_ptr cinfo) {
  auto* errors = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, errors->message);
  std::longjmp(errors->jump, 1);
}

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

// Everything between the setjmp and the longjmp is plain C data, so jumping skips no
// destructor. Returns 0 on success, 1 on a libjpeg error, 2 when over the limits.
int decompress(jpeg_decompress_struct* cinfo, JpegErrorManager* errors, const Bytes& bytes,
               const DecodeOptions& options, std::vector<std::uint8_t>* pixels, int* width, int* height,
               int* channels, bool* inverted_cmyk) {
  if (setjmp(errors->jump)) return 1;
  jpeg_mem_src(cinfo, bytes.data(), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(cinfo, TRUE);
  const unsigned long long n = static_cast<unsigned long long>(cinfo->image_width) * cinfo->image_height;
  if (cinfo->image_width == 0 || cinfo->image_height == 0 || n > options.limits.max_pixels) {
    *width = static_cast<int>(cinfo->image_width);
    *height = static_cast<int>(cinfo->image_height);
    return 2;
  }
  const bool cmyk = cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK;
  cinfo->out_color_space = cmyk ? JCS_CMYK : (cinfo->num_components == 1 ? JCS_GRAYSCALE : JCS_RGB);
  cinfo->dct_method = dct_method(options.dct);
  cinfo->do_fancy_upsampling = options.fancy_upsampling ? TRUE : FALSE;
  *inverted_cmyk = cmyk && cinfo->saw_Adobe_marker;
  jpeg_start_decompress(cinfo);
  *width = static_cast<int>(cinfo->output_width);
  *height = static_cast<int>(cinfo->output_height);
  *channels = cinfo->output_components;
  // The caller sized `pixels` from the header; output size equals it without scaling.
  const std::size_t stride = static_cast<std::size_t>(*width) * *channels;
  if (pixels->size() < stride * *height) return 1;
  while (cinfo->output_scanline < cinfo->output_height) {
    JSAMPROW row = pixels->data() + stride * cinfo->output_scanline;
    jpeg_read_scanlines(cinfo, &row, 1);
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

bool jpeg_header_dimensions(const Bytes& bytes, int* width, int* height) {
  jpeg_decompress_struct probe;
  JpegErrorManager errors;
  probe.err = jpeg_std_error(&errors.pub);
  errors.pub.error_exit = on_error_exit;
  errors.pub.emit_message = on_message;
  jpeg_create_decompress(&probe);
  bool ok = false;
  if (!setjmp(errors.jump)) {
    jpeg_mem_src(&probe, bytes.data(), static_cast<unsigned long>(bytes.size()));
    jpeg_read_header(&probe, TRUE);
    *width = static_cast<int>(probe.image_width);
    *height = static_cast<int>(probe.image_height);
    ok = true;
  }
  jpeg_destroy_decompress(&probe);
  return ok;
}

Expected<Image> decode_turbojpeg(const Bytes& bytes, const std::string& origin, const DecodeOptions& options) {
  jpeg_decompress_struct cinfo;
  JpegErrorManager errors;
  cinfo.err = jpeg_std_error(&errors.pub);
  errors.pub.error_exit = on_error_exit;
  errors.pub.emit_message = on_message;
  jpeg_create_decompress(&cinfo);

  // First pass over the header only, to size the buffer (and refuse bombs) before decoding.
  int width = 0, height = 0, channels = 0;
  bool inverted = false;
  std::vector<std::uint8_t> pixels;
  {
    jpeg_decompress_struct probe;
    JpegErrorManager probe_errors;
    probe.err = jpeg_std_error(&probe_errors.pub);
    probe_errors.pub.error_exit = on_error_exit;
    jpeg_create_decompress(&probe);
    int header_ok = 0;
    if (!setjmp(probe_errors.jump)) {
      jpeg_mem_src(&probe, bytes.data(), static_cast<unsigned long>(bytes.size()));
      jpeg_read_header(&probe, TRUE);
      width = static_cast<int>(probe.image_width);
      height = static_cast<int>(probe.image_height);
      channels = probe.num_components == 1 ? 1 : (probe.jpeg_color_space == JCS_CMYK || probe.jpeg_color_space == JCS_YCCK ? 4 : 3);
      header_ok = 1;
    }
    const std::string message = probe_errors.message;
    jpeg_destroy_decompress(&probe);
    if (!header_ok) {
      jpeg_destroy_decompress(&cinfo);
      return corrupt(origin + ": not a readable JPEG (" + message + ")");
    }
  }
  if (Status s = check_dimensions(width, height, origin, options.limits); !s.is_ok()) {
    jpeg_destroy_decompress(&cinfo);
    return s;
  }
  pixels.resize(static_cast<std::size_t>(width) * height * channels);
  const int rc = decompress(&cinfo, &errors, bytes, options, &pixels, &width, &height, &channels, &inverted);
  jpeg_destroy_decompress(&cinfo);
  if (rc == 1) return corrupt(origin + ": cannot decode JPEG (" + std::string(errors.message) + ")");
  if (rc == 2) return check_dimensions(width, height, origin, options.limits);
  if (errors.truncated) return corrupt(origin + ": truncated JPEG (premature end of data)");

  Image image;
  image.width = width;
  image.height = height;
  image.channels = channels;
  image.pixels = std::move(pixels);
  if (channels == 4) image = cmyk_to_rgb(image, inverted);
  if (options.apply_orientation) image = apply_orientation(image, exif_orientation(bytes));
  return image;
}

}  // namespace edgefleet::detail
