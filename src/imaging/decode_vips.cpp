#include <cstring>

#include <vips/vips8>

#include "imaging/decoders.h"
#include "imaging/magick_runtime.h"

namespace edgefleet::detail {

Expected<Image> decode_vips(const Bytes& bytes, const std::string& origin, const DecodeOptions& options) {
  ensure_vips_initialised();
  try {
    // Loading is lazy: the header is read here, pixels only when written out below.
    vips::VImage picture = vips::VImage::new_from_buffer(
        bytes.data(), bytes.size(), "", vips::VImage::option()->set("fail_on", VIPS_FAIL_ON_TRUNCATED));
    if (Status s = check_dimensions(picture.width(), picture.height(), origin, options.limits); !s.is_ok()) return s;
    if (options.apply_orientation) picture = picture.autorot();
    const bool gray = picture.bands() <= 2 && picture.interpretation() != VIPS_INTERPRETATION_CMYK;
    if (picture.has_alpha()) picture = picture.extract_band(0, vips::VImage::option()->set("n", picture.bands() - 1));
    picture = picture.colourspace(gray ? VIPS_INTERPRETATION_B_W : VIPS_INTERPRETATION_sRGB);
    if (picture.format() != VIPS_FORMAT_UCHAR) picture = picture.cast(VIPS_FORMAT_UCHAR);
    if (picture.bands() > (gray ? 1 : 3)) picture = picture.extract_band(0, vips::VImage::option()->set("n", gray ? 1 : 3));
    std::size_t size = 0;
    void* memory = picture.write_to_memory(&size);
    Image image;
    image.width = picture.width();
    image.height = picture.height();
    image.channels = picture.bands();
    image.pixels.resize(size);
    std::memcpy(image.pixels.data(), memory, size);
    g_free(memory);
    if (image.pixels.size() != static_cast<std::size_t>(image.width) * image.height * image.channels) {
      return internal_error(origin + ": libvips returned an unexpected buffer size");
    }
    return image;
  } catch (const vips::VError& e) {
    vips_error_clear();
    return corrupt(origin + ": libvips cannot decode it (" + first_meaningful_line(e.what()) + ")");
  }
}

}  // namespace edgefleet::detail
