#include <libraw/libraw.h>

#include "imaging/decoders.h"
#include "imaging/libraw_image.h"

namespace edgefleet::detail {

Expected<Image> decode_libraw(const Bytes& bytes, const std::string& origin, const DecodeOptions& options) {
  auto processor = std::make_unique<LibRaw>();
  int rc = processor->open_buffer(const_cast<std::uint8_t*>(bytes.data()), bytes.size());
  if (rc != LIBRAW_SUCCESS) return corrupt(origin + ": not a raw file LibRaw reads (" + libraw_strerror(rc) + ")");
  const auto& sizes = processor->imgdata.sizes;
  if (Status s = check_dimensions(sizes.iwidth, sizes.iheight, origin, options.limits); !s.is_ok()) return s;
  if ((rc = processor->unpack()) != LIBRAW_SUCCESS) return corrupt(origin + ": LibRaw unpack: " + libraw_strerror(rc));
  processor->imgdata.params.use_camera_wb = 1;
  processor->imgdata.params.output_bps = 8;
  if ((rc = processor->dcraw_process()) != LIBRAW_SUCCESS) return corrupt(origin + ": LibRaw: " + libraw_strerror(rc));
  int error = 0;
  LibRawImage processed(processor->dcraw_make_mem_image(&error));
  if (!processed) return corrupt(origin + ": LibRaw: " + libraw_strerror(error));
  if (processed->type != LIBRAW_IMAGE_BITMAP || processed->bits != 8 || (processed->colors != 3 && processed->colors != 1)) {
    return unsupported(origin + ": LibRaw developed an unexpected layout");
  }
  Image image;
  image.width = processed->width;
  image.height = processed->height;
  image.channels = processed->colors;
  image.pixels.assign(processed->data, processed->data + processed->data_size);
  return image;
}

}  // namespace edgefleet::detail
