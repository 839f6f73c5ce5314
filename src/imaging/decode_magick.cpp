#include <Magick++.h>

#include "imaging/decoders.h"
#include "imaging/magick_runtime.h"

namespace edgefleet::detail {

Expected<Image> decode_magick(const Bytes& bytes, const std::string& origin, const DecodeOptions& options) {
  ensure_magick_initialised();
  try {
    const Magick::Blob blob(bytes.data(), bytes.size());
    Magick::Image probe;
    probe.quiet(true);
    probe.ping(blob);  // attributes only: refuse bombs before any pixel is allocated
    if (Status s = check_dimensions(probe.columns(), probe.rows(), origin, options.limits); !s.is_ok()) return s;

    Magick::Image picture;
    try {
      picture.read(blob);
    } catch (const Magick::WarningCorruptImage& e) {
      // ImageMagick reads a truncated file as a partly grey picture and only warns.
      return corrupt(origin + ": ImageMagick: " + first_meaningful_line(e.what()));
    } catch (const Magick::Warning&) {
      // Other warnings (unknown metadata, ...) leave a good picture.
    }
    if (options.apply_orientation) picture.autoOrient();
    if (picture.colorSpace() == MagickCore::CMYKColorspace) picture.colorSpace(MagickCore::sRGBColorspace);
    const bool gray = picture.colorSpace() == MagickCore::GRAYColorspace || picture.type() == MagickCore::GrayscaleType ||
                      picture.type() == MagickCore::BilevelType || picture.type() == MagickCore::GrayscaleMatteType;
    Image image;
    image.width = static_cast<int>(picture.columns());
    image.height = static_cast<int>(picture.rows());
    image.channels = gray ? 1 : 3;
    image.pixels.resize(static_cast<std::size_t>(image.width) * image.height * image.channels);
    picture.write(0, 0, image.width, image.height, gray ? "I" : "RGB", Magick::CharPixel, image.pixels.data());
    return image;
  } catch (const Magick::Exception& e) {
    return corrupt(origin + ": ImageMagick cannot decode it (" + first_meaningful_line(e.what()) + ")");
  }
}

}  // namespace edgefleet::detail
