// libpng's progressive-free low-level API, with the transforms most applications use:
// palettes and low bit depths expanded, 16-bit scaled (rounded) to 8, alpha stripped. (The
// simplified API would instead treat 16-bit files without gAMA as linear light.)
#include <csetjmp>
#include <cstring>

#include <png.h>

#include "imaging/decoders.h"

namespace edgefleet::detail {
namespace {

struct MemoryReader {
  const std::uint8_t* data;
  std::size_t size;
  std::size_t offset;
};

void read_from_memory(png_structp png, png_bytep out, png_size_t length) {
  auto* reader = static_cast<MemoryReader*>(png_get_io_ptr(png));
  if (length > reader->size - reader->offset) png_error(png, "truncated PNG (read past the end of the data)");
  std::memcpy(out, reader->data + reader->offset, length);
  reader->offset += length;
}

struct PngMessages {
  char error[256];
};

void on_error(png_structp png, png_const_charp message) {
  auto* messages = static_cast<PngMessages*>(png_get_error_ptr(png));
  std::snprintf(messages->error, sizeof(messages->error), "%s", message);
  png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}

struct Header {
  png_uint_32 width = 0, height = 0;
  int channels = 0;
};

// Plain C data only between setjmp and longjmp. stage 0 reads the header (and sets the
// transforms), stage 1 the pixels into `pixels`. Returns false on a libpng error.
bool read_png(png_structp png, png_infop info, MemoryReader* reader, Header* header, std::uint8_t* pixels, int stage,
              png_bytep* rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  if (stage == 0) {
    png_set_read_fn(png, reader, read_from_memory);
    png_read_info(png, info);
    header->width = png_get_image_width(png, info);
    header->height = png_get_image_height(png, info);
    png_set_expand(png);      // palette -> RGB, gray < 8 bits -> 8 bits, tRNS -> alpha
    png_set_scale_16(png);    // 16 -> 8 bits, rounded
    png_set_strip_alpha(png); // dropped, not composited
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    header->channels = png_get_channels(png, info);
    return true;
  }
  const std::size_t stride = static_cast<std::size_t>(header->width) * header->channels;
  for (png_uint_32 y = 0; y < header->height; ++y) rows[y] = pixels + stride * y;
  png_read_image(png, rows);
  png_read_end(png, nullptr);
  return true;
}

}  // namespace

Expected<Image> decode_libpng(const Bytes& bytes, const std::string& origin, const DecodeOptions& options) {
  PngMessages messages{};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &messages, on_error, on_warning);
  if (png == nullptr) return internal_error(origin + ": libpng cannot start");
  png_infop info = png_create_info_struct(png);
  MemoryReader reader{bytes.data(), bytes.size(), 0};
  Header header;
  Image image;
  std::vector<png_bytep> rows;
  Status status;
  if (!read_png(png, info, &reader, &header, nullptr, 0, nullptr)) {
    status = corrupt(origin + ": not a readable PNG (" + messages.error + ")");
  } else if (!(status = check_dimensions(header.width, header.height, origin, options.limits)).is_ok()) {
  } else if (header.channels != 1 && header.channels != 3) {
    status = unsupported(origin + ": PNG with " + std::to_string(header.channels) + " channels after expansion");
  } else {
    image.width = static_cast<int>(header.width);
    image.height = static_cast<int>(header.height);
    image.channels = header.channels;
    image.pixels.resize(static_cast<std::size_t>(image.width) * image.height * image.channels);
    rows.resize(header.height);
    if (!read_png(png, info, &reader, &header, image.pixels.data(), 1, rows.data())) {
      status = corrupt(origin + ": cannot decode PNG (" + messages.error + ")");
    }
  }
  png_destroy_read_struct(&png, &info, nullptr);
  if (!status.is_ok()) return status;
  return image;
}

}  // namespace edgefleet::detail
