#include <cstring>
#include <memory>

#include <libheif/heif.h>

#include "imaging/decoders.h"

namespace edgefleet::detail {
namespace {

struct HeifDeleter {
  void operator()(heif_context* p) const { heif_context_free(p); }
  void operator()(heif_image_handle* p) const { heif_image_handle_release(p); }
  void operator()(heif_image* p) const { heif_image_release(p); }
  void operator()(heif_decoding_options* p) const { heif_decoding_options_free(p); }
};
template <typename T>
using HeifPtr = std::unique_ptr<T, HeifDeleter>;

}  // namespace

Expected<Image> decode_libheif(const Bytes& bytes, const std::string& origin, const DecodeOptions& options) {
  HeifPtr<heif_context> context(heif_context_alloc());
  heif_error error = heif_context_read_from_memory_without_copy(context.get(), bytes.data(), bytes.size(), nullptr);
  if (error.code != heif_error_Ok) return corrupt(origin + ": not a readable HEIF (" + error.message + ")");
  heif_image_handle* raw_handle = nullptr;
  error = heif_context_get_primary_image_handle(context.get(), &raw_handle);
  HeifPtr<heif_image_handle> handle(raw_handle);
  if (error.code != heif_error_Ok) return corrupt(origin + ": HEIF without a primary image (" + error.message + ")");
  const int width = heif_image_handle_get_width(handle.get());
  const int height = heif_image_handle_get_height(handle.get());
  if (Status s = check_dimensions(width, height, origin, options.limits); !s.is_ok()) return s;

  HeifPtr<heif_decoding_options> decoding(heif_decoding_options_alloc());
  decoding->ignore_transformations = options.apply_orientation ? 0 : 1;
  heif_image* raw_image = nullptr;
  error = heif_decode_image(handle.get(), &raw_image, heif_colorspace_RGB, heif_chroma_interleaved_RGB, decoding.get());
  HeifPtr<heif_image> decoded(raw_image);
  if (error.code != heif_error_Ok) return corrupt(origin + ": cannot decode HEIF (" + error.message + ")");
  int stride = 0;
  const std::uint8_t* plane = heif_image_get_plane_readonly(decoded.get(), heif_channel_interleaved, &stride);
  if (plane == nullptr) return corrupt(origin + ": HEIF decoded without an RGB plane");
  Image image;
  image.width = heif_image_get_width(decoded.get(), heif_channel_interleaved);
  image.height = heif_image_get_height(decoded.get(), heif_channel_interleaved);
  image.channels = 3;
  image.pixels.resize(static_cast<std::size_t>(image.width) * image.height * 3);
  for (int y = 0; y < image.height; ++y) {
    std::memcpy(&image.pixels[static_cast<std::size_t>(y) * image.width * 3], plane + static_cast<std::size_t>(y) * stride,
                static_cast<std::size_t>(image.width) * 3);
  }
  return image;
}

}  // namespace edgefleet::detail
