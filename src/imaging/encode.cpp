#include "edgefleet/encode.h"

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <libheif/heif.h>
#include <png.h>
#include <webp/encode.h>

#include "imaging/decoders.h"
#include "imaging/jpeg_errors.h"

namespace edgefleet {
namespace {

using Bytes = std::vector<std::uint8_t>;

Image to_rgb(const Image& image) {
  if (image.channels == 3) return image;
  Image rgb;
  rgb.width = image.width;
  rgb.height = image.height;
  rgb.channels = 3;
  const std::size_t n = static_cast<std::size_t>(image.width) * image.height;
  rgb.pixels.resize(n * 3);
  for (std::size_t i = 0; i < n; ++i) {
    for (int c = 0; c < 3; ++c) {
      rgb.pixels[i * 3 + c] = image.channels == 1 ? image.pixels[i] : image.pixels[i * image.channels + c];
    }
  }
  return rgb;
}

using detail::JpegErrorManager;

// Only C data lives between setjmp and longjmp. Returns false on a libjpeg error.
bool compress_jpeg(jpeg_compress_struct* cinfo, JpegErrorManager* errors, const Image& image,
                   const EncodeOptions& options, unsigned char** out, unsigned long* out_size) {
  if (setjmp(errors->jump)) return false;
  jpeg_mem_dest(cinfo, out, out_size);
  cinfo->image_width = static_cast<JDIMENSION>(image.width);
  cinfo->image_height = static_cast<JDIMENSION>(image.height);
  cinfo->input_components = image.channels;
  cinfo->in_color_space = image.channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(cinfo);
  jpeg_set_quality(cinfo, options.quality, TRUE);
  cinfo->dct_method = options.dct == DctMethod::kIfast ? JDCT_IFAST : options.dct == DctMethod::kFloat ? JDCT_FLOAT : JDCT_ISLOW;
  if (image.channels == 3) {
    // Luma sampling factors; chroma stays 1x1, so these set 4:4:4 / 4:2:2 / 4:2:0.
    cinfo->comp_info[0].h_samp_factor = options.subsampling == ChromaSubsampling::k444 ? 1 : 2;
    cinfo->comp_info[0].v_samp_factor = options.subsampling == ChromaSubsampling::k420 ? 2 : 1;
  }
  jpeg_start_compress(cinfo, TRUE);
  const std::size_t stride = static_cast<std::size_t>(image.width) * image.channels;
  while (cinfo->next_scanline < cinfo->image_height) {
    JSAMPROW row = const_cast<std::uint8_t*>(image.pixels.data()) + stride * cinfo->next_scanline;
    jpeg_write_scanlines(cinfo, &row, 1);
  }
  jpeg_finish_compress(cinfo);
  return true;
}

Expected<Bytes> encode_jpeg(const Image& input, const EncodeOptions& options) {
  const Image image = input.channels == 4 ? detail::drop_alpha(input) : input;
  jpeg_compress_struct cinfo;
  JpegErrorManager errors;
  cinfo.err = detail::use_error_manager(&errors);
  jpeg_create_compress(&cinfo);
  unsigned char* out = nullptr;
  unsigned long out_size = 0;
  const bool ok = compress_jpeg(&cinfo, &errors, image, options, &out, &out_size);
  jpeg_destroy_compress(&cinfo);
  Bytes bytes;
  if (ok) bytes.assign(out, out + out_size);
  std::free(out);
  if (!ok) return internal_error(std::string("libjpeg-turbo cannot encode: ") + errors.message);
  return bytes;
}

Expected<Bytes> encode_png(const Image& image) {
  png_image png{};
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(image.width);
  png.height = static_cast<png_uint_32>(image.height);
  png.format = image.channels == 1 ? PNG_FORMAT_GRAY : image.channels == 4 ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB;
  // Written once into a buffer of the largest size the image can take: asking libpng for the
  // size first compresses the whole image an extra time (the PNG environment ran 1.5x slower).
  Bytes bytes(PNG_IMAGE_PNG_SIZE_MAX(png));
  png_alloc_size_t size = bytes.size();
  if (!png_image_write_to_memory(&png, bytes.data(), &size, 0, image.pixels.data(), 0, nullptr)) {
    return internal_error(std::string("libpng cannot encode: ") + png.message);
  }
  bytes.resize(size);
  return bytes;
}

Expected<Bytes> encode_webp(const Image& input, const EncodeOptions& options) {
  const Image rgb = to_rgb(input);
  std::uint8_t* out = nullptr;
  const std::size_t size =
      options.lossless ? WebPEncodeLosslessRGB(rgb.pixels.data(), rgb.width, rgb.height, rgb.width * 3, &out)
                       : WebPEncodeRGB(rgb.pixels.data(), rgb.width, rgb.height, rgb.width * 3,
                                       static_cast<float>(options.quality), &out);
  if (size == 0 || out == nullptr) {
    WebPFree(out);
    return invalid_argument("libwebp cannot encode a " + std::to_string(rgb.width) + "x" + std::to_string(rgb.height) +
                            " image (WebP allows at most 16383 pixels per side)");
  }
  Bytes bytes(out, out + size);
  WebPFree(out);
  return bytes;
}

struct HeifDeleter {
  void operator()(heif_context* p) const { heif_context_free(p); }
  void operator()(heif_encoder* p) const { heif_encoder_release(p); }
  void operator()(heif_image* p) const { heif_image_release(p); }
};

heif_error append_to_bytes(heif_context*, const void* data, size_t size, void* userdata) {
  auto* bytes = static_cast<Bytes*>(userdata);
  const auto* p = static_cast<const std::uint8_t*>(data);
  bytes->insert(bytes->end(), p, p + size);
  return heif_error{heif_error_Ok, heif_suberror_Unspecified, "ok"};
}

Expected<Bytes> encode_heif(const Image& input, const EncodeOptions& options) {
  const Image rgb = to_rgb(input);
  std::unique_ptr<heif_context, HeifDeleter> context(heif_context_alloc());
  heif_encoder* raw_encoder = nullptr;
  heif_error error = heif_context_get_encoder_for_format(context.get(), heif_compression_HEVC, &raw_encoder);
  std::unique_ptr<heif_encoder, HeifDeleter> encoder(raw_encoder);
  if (error.code != heif_error_Ok) return unsupported(std::string("no HEVC encoder in libheif: ") + error.message);
  if (options.lossless) {
    heif_encoder_set_lossless(encoder.get(), 1);
  } else {
    heif_encoder_set_lossy_quality(encoder.get(), options.quality);
  }
  if (!options.preset.empty()) {
    error = heif_encoder_set_parameter_string(encoder.get(), "preset", options.preset.c_str());
    if (error.code != heif_error_Ok) return invalid_argument(std::string("libheif: preset '") + options.preset + "': " + error.message);
  }
  heif_image* raw_image = nullptr;
  error = heif_image_create(rgb.width, rgb.height, heif_colorspace_RGB, heif_chroma_interleaved_RGB, &raw_image);
  std::unique_ptr<heif_image, HeifDeleter> picture(raw_image);
  if (error.code != heif_error_Ok) return internal_error(std::string("libheif: ") + error.message);
  error = heif_image_add_plane(picture.get(), heif_channel_interleaved, rgb.width, rgb.height, 8);
  if (error.code != heif_error_Ok) return invalid_argument(std::string("libheif cannot hold the image: ") + error.message);
  int stride = 0;
  std::uint8_t* plane = heif_image_get_plane(picture.get(), heif_channel_interleaved, &stride);
  for (int y = 0; y < rgb.height; ++y) {
    std::memcpy(plane + static_cast<std::size_t>(y) * stride, &rgb.pixels[static_cast<std::size_t>(y) * rgb.width * 3],
                static_cast<std::size_t>(rgb.width) * 3);
  }
  error = heif_context_encode_image(context.get(), picture.get(), encoder.get(), nullptr, nullptr);
  if (error.code != heif_error_Ok) return internal_error(std::string("libheif cannot encode: ") + error.message);
  Bytes bytes;
  heif_writer writer{};
  writer.writer_api_version = 1;
  writer.write = append_to_bytes;
  error = heif_context_write(context.get(), &writer, &bytes);
  if (error.code != heif_error_Ok) return internal_error(std::string("libheif cannot write: ") + error.message);
  return bytes;
}

}  // namespace

const std::vector<std::string>& x265_presets() {
  static const std::vector<std::string> kPresets = {"ultrafast", "superfast", "veryfast", "faster", "fast",
                                                    "medium",    "slow",      "slower",   "veryslow", "placebo"};
  return kPresets;
}

int default_quality(ImageFormat format) {
  switch (format) {
    case ImageFormat::kWebp: return 75;
    case ImageFormat::kHeif: return 50;
    default: break;
  }
  return 92;
}

Expected<std::vector<std::uint8_t>> encode_image(const Image& image, const EncodeOptions& options) {
  if (image.empty() || image.width <= 0 || image.height <= 0) return invalid_argument("encode: empty image");
  if (image.channels != 1 && image.channels != 3 && image.channels != 4) {
    return invalid_argument("encode: " + std::to_string(image.channels) + " channels, expected 1, 3 or 4");
  }
  if (image.pixels.size() != static_cast<std::size_t>(image.width) * image.height * image.channels) {
    return invalid_argument("encode: pixel buffer does not match the image size");
  }
  if (options.quality < 0 || options.quality > 100) {
    return invalid_argument("encode: quality " + std::to_string(options.quality) + " is not in 1..100");
  }
  if (!options.preset.empty()) {
    if (options.format != ImageFormat::kHeif) return invalid_argument("encode: preset is a HEIF (x265) option");
    const auto& presets = x265_presets();
    if (std::find(presets.begin(), presets.end(), options.preset) == presets.end()) {
      return invalid_argument("encode: x265 preset '" + options.preset + "' is not one of ultrafast .. placebo");
    }
  }
  EncodeOptions resolved = options;
  if (resolved.quality == 0) resolved.quality = default_quality(options.format);
  switch (options.format) {
    case ImageFormat::kJpeg: return encode_jpeg(image, resolved);
    case ImageFormat::kPng: return encode_png(image);
    case ImageFormat::kWebp: return encode_webp(image, resolved);
    case ImageFormat::kHeif: return encode_heif(image, resolved);
    default: break;
  }
  return unsupported(std::string("encode: cannot write ") + image_format_name(options.format) +
                     " (allowed: jpeg, png, webp, heif)");
}

}  // namespace edgefleet
