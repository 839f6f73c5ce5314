#include "edgefleet/decode.h"

#include <cstring>

#include <libexif/exif-data.h>
#include <webp/decode.h>
#include <opencv2/core.hpp>

#include "imaging/decoders.h"
#include "imaging/opencv_image.h"

namespace edgefleet {

ImageFormat sniff_image_format(const std::vector<std::uint8_t>& b) {
  auto starts = [&](const char* magic, std::size_t offset = 0) {
    const std::size_t n = std::strlen(magic);
    return b.size() >= offset + n && std::memcmp(b.data() + offset, magic, n) == 0;
  };
  if (b.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return ImageFormat::kJpeg;
  if (starts("\x89PNG\r\n\x1a\n")) return ImageFormat::kPng;
  if (starts("RIFF") && starts("WEBP", 8)) return ImageFormat::kWebp;
  if (starts("ftyp", 4)) {
    for (const char* brand : {"heic", "heix", "heim", "heis", "hevc", "hevx", "mif1", "msf1"}) {
      if (starts(brand, 8)) return ImageFormat::kHeif;
    }
  }
  if (starts("BM")) return ImageFormat::kBmp;
  if (starts("II*\0") || starts("MM\0*")) return ImageFormat::kTiff;
  if (starts("GIF87a") || starts("GIF89a")) return ImageFormat::kGif;
  if (b.size() >= 2 && b[0] == 'P' && b[1] >= '1' && b[1] <= '6') return ImageFormat::kPnm;
  return ImageFormat::kUnknown;
}

const char* image_format_name(ImageFormat format) {
  switch (format) {
    case ImageFormat::kJpeg: return "jpeg";
    case ImageFormat::kPng: return "png";
    case ImageFormat::kWebp: return "webp";
    case ImageFormat::kHeif: return "heif";
    case ImageFormat::kBmp: return "bmp";
    case ImageFormat::kTiff: return "tiff";
    case ImageFormat::kGif: return "gif";
    case ImageFormat::kPnm: return "pnm";
    case ImageFormat::kUnknown: break;
  }
  return "unknown";
}

const char* decoder_name(Decoder decoder) {
  switch (decoder) {
    case Decoder::kTurboJpeg: return "turbojpeg";
    case Decoder::kOpenCv: return "opencv";
    case Decoder::kMagick: return "magick";
    case Decoder::kVips: return "vips";
    case Decoder::kLibPng: return "libpng";
    case Decoder::kLibWebp: return "libwebp";
    case Decoder::kLibHeif: return "libheif";
    case Decoder::kLibRaw: return "libraw";
    case Decoder::kAuto: break;
  }
  return "auto";
}

Expected<Image> decode_image(const std::vector<std::uint8_t>& bytes, const std::string& origin,
                             const DecodeOptions& options) {
  if (bytes.empty()) return corrupt(origin + ": empty file, not an image");
  if (bytes.size() > options.limits.max_bytes) {
    return invalid_argument(origin + ": " + std::to_string(bytes.size()) + " bytes is over the limit of " +
                            std::to_string(options.limits.max_bytes));
  }
  const ImageFormat format = sniff_image_format(bytes);
  Decoder decoder = options.decoder;
  if (decoder == Decoder::kAuto) {
    switch (format) {
      case ImageFormat::kJpeg: decoder = Decoder::kTurboJpeg; break;
      case ImageFormat::kPng: decoder = Decoder::kLibPng; break;
      case ImageFormat::kWebp: decoder = Decoder::kLibWebp; break;
      case ImageFormat::kHeif: decoder = Decoder::kLibHeif; break;
      default: decoder = Decoder::kOpenCv; break;
    }
  }
  // The single-format libraries say which format they read instead of failing obscurely.
  auto only = [&](ImageFormat wanted, const char* library) -> Status {
    if (format == wanted) return Status::ok();
    return unsupported(origin + ": " + library + " reads " + image_format_name(wanted) + " only, this is " +
                       (format == ImageFormat::kUnknown ? std::string("not a known image format")
                                                        : std::string(image_format_name(format))));
  };
  Status status;
  switch (decoder) {
    case Decoder::kTurboJpeg:
      if (!(status = only(ImageFormat::kJpeg, "turbojpeg")).is_ok()) return status;
      return detail::decode_turbojpeg(bytes, origin, options);
    case Decoder::kLibPng:
      if (!(status = only(ImageFormat::kPng, "libpng")).is_ok()) return status;
      return detail::decode_libpng(bytes, origin, options);
    case Decoder::kLibWebp:
      if (!(status = only(ImageFormat::kWebp, "libwebp")).is_ok()) return status;
      return detail::decode_libwebp(bytes, origin, options);
    case Decoder::kLibHeif:
      if (!(status = only(ImageFormat::kHeif, "libheif")).is_ok()) return status;
      return detail::decode_libheif(bytes, origin, options);
    case Decoder::kLibRaw:  // raw formats have no one signature: LibRaw identifies them itself
      return detail::decode_libraw(bytes, origin, options);
    case Decoder::kMagick:
    case Decoder::kVips:
    case Decoder::kOpenCv:
    case Decoder::kAuto:
      break;
  }
  // The multi-format libraries would try every coder they have (OpenCV: JPEG 2000, OpenEXR;
  // ImageMagick: SVG, MSL, text) on unknown bytes: only known raster signatures reach them.
  if (format == ImageFormat::kUnknown) return corrupt(origin + ": not an image (unrecognised file signature)");
  if (decoder == Decoder::kMagick) return detail::decode_magick(bytes, origin, options);
  if (decoder == Decoder::kVips) return detail::decode_vips(bytes, origin, options);
  return detail::decode_opencv(bytes, origin, options);
}

Expected<Image> decode_image(const std::vector<std::uint8_t>& bytes, const std::string& origin,
                             const DecodeLimits& limits) {
  DecodeOptions options;
  options.limits = limits;
  return decode_image(bytes, origin, options);
}

std::optional<ImageSize> probe_image_size(const std::vector<std::uint8_t>& bytes) {
  ImageSize size;
  if (!detail::probe_dimensions(bytes, sniff_image_format(bytes), &size.width, &size.height)) return std::nullopt;
  if (size.width <= 0 || size.height <= 0) return std::nullopt;
  return size;
}

namespace detail {

Status check_dimensions(long long width, long long height, const std::string& origin, const DecodeLimits& limits) {
  if (width <= 0 || height <= 0) {
    return corrupt(origin + ": image has no pixels (" + std::to_string(width) + "x" + std::to_string(height) + ")");
  }
  if (static_cast<unsigned long long>(width) * static_cast<unsigned long long>(height) > limits.max_pixels) {
    return invalid_argument(origin + ": " + std::to_string(width) + "x" + std::to_string(height) +
                            " pixels is over the limit of " + std::to_string(limits.max_pixels));
  }
  return Status::ok();
}

bool probe_dimensions(const Bytes& bytes, ImageFormat format, long long* width, long long* height) {
  switch (format) {
    case ImageFormat::kJpeg: {
      int w = 0, h = 0;
      walk_jpeg_markers(bytes, &w, &h);
      if (w <= 0 && h <= 0) return false;
      *width = w;
      *height = h;
      return true;
    }
    case ImageFormat::kPng: {
      // The IHDR chunk must come first: big-endian width and height at bytes 16..23.
      if (bytes.size() < 24 || std::memcmp(bytes.data() + 12, "IHDR", 4) != 0) return false;
      auto be32 = [&](std::size_t i) {
        return (static_cast<long long>(bytes[i]) << 24) | (bytes[i + 1] << 16) | (bytes[i + 2] << 8) | bytes[i + 3];
      };
      *width = be32(16);
      *height = be32(20);
      return true;
    }
    case ImageFormat::kWebp: {
      int w = 0, h = 0;
      if (!WebPGetInfo(bytes.data(), bytes.size(), &w, &h)) return false;
      *width = w;
      *height = h;
      return true;
    }
    default:
      return false;
  }
}

bool walk_jpeg_markers(const Bytes& b, int* width, int* height) {
  // Walk the marker segments to the first scan, then the entropy-coded data (where 0xFF is
  // followed by 0x00 stuffing or a restart/next-scan marker) to EOI. The frame header (SOFn)
  // on the way gives the size.
  std::size_t i = 2;
  while (i + 4 <= b.size()) {
    if (b[i] != 0xFF) return false;
    const std::uint8_t marker = b[i + 1];
    if (marker == 0xFF) { ++i; continue; }
    if (marker == 0xD9) return true;
    if (marker >= 0xD0 && marker <= 0xD7) { i += 2; continue; }
    const std::size_t length = (static_cast<std::size_t>(b[i + 2]) << 8) | b[i + 3];
    const bool frame = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (frame && i + 9 <= b.size() && (*width <= 0 && *height <= 0)) {
      *height = (b[i + 5] << 8) | b[i + 6];
      *width = (b[i + 7] << 8) | b[i + 8];
    }
    i += 2 + length;
    if (marker != 0xDA) continue;
    while (i + 1 < b.size()) {
      const void* ff = std::memchr(b.data() + i, 0xFF, b.size() - i - 1);  // markers start with 0xFF
      if (ff == nullptr) return false;
      i = static_cast<const std::uint8_t*>(ff) - b.data();
      if (b[i + 1] != 0x00 && !(b[i + 1] >= 0xD0 && b[i + 1] <= 0xD7) && b[i + 1] != 0xFF) break;
      ++i;
    }
    if (i + 1 >= b.size()) return false;
  }
  return i + 2 <= b.size() && b[i] == 0xFF && b[i + 1] == 0xD9;
}

int exif_orientation(const Bytes& bytes) {
  ExifData* data = exif_data_new_from_data(bytes.data(), static_cast<unsigned int>(bytes.size()));
  if (data == nullptr) return 1;
  int orientation = 1;
  if (ExifEntry* entry = exif_data_get_entry(data, EXIF_TAG_ORIENTATION)) {
    if (entry->format == EXIF_FORMAT_SHORT && entry->components == 1) {
      orientation = exif_get_short(entry->data, exif_data_get_byte_order(data));
    }
  }
  exif_data_unref(data);
  return orientation >= 1 && orientation <= 8 ? orientation : 1;
}

Image apply_orientation(const Image& image, int orientation) {
  if (orientation <= 1 || orientation > 8) return image;
  const cv::Mat in = mat_view(image);
  cv::Mat out;
  switch (orientation) {
    case 2: cv::flip(in, out, 1); break;                   // mirrored horizontally
    case 3: cv::rotate(in, out, cv::ROTATE_180); break;
    case 4: cv::flip(in, out, 0); break;                   // mirrored vertically
    case 5: cv::transpose(in, out); break;                 // mirrored along the main diagonal
    case 6: cv::rotate(in, out, cv::ROTATE_90_CLOCKWISE); break;
    case 7: cv::transpose(in, out); cv::rotate(out, out, cv::ROTATE_180); break;
    case 8: cv::rotate(in, out, cv::ROTATE_90_COUNTERCLOCKWISE); break;
  }
  return image_from_mat(out);
}

Image drop_alpha(Image image) {
  if (image.channels != 2 && image.channels != 4) return image;
  const int keep = image.channels - 1;
  const std::size_t n = static_cast<std::size_t>(image.width) * image.height;
  PixelBuffer out(n * keep);
  for (std::size_t i = 0; i < n; ++i) {
    std::memcpy(&out[i * keep], &image.pixels[i * image.channels], keep);
  }
  image.pixels = std::move(out);
  image.channels = keep;
  return image;
}

}  // namespace detail
}  // namespace edgefleet
