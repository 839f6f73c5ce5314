// Internal: ownership of the images LibRaw's dcraw_make_mem_image allocates.
#pragma once

#include <memory>

#include <libraw/libraw.h>

namespace edgefleet::detail {

struct LibRawImageDeleter {
  void operator()(libraw_processed_image_t* p) const { LibRaw::dcraw_clear_mem(p); }
};
using LibRawImage = std::unique_ptr<libraw_processed_image_t, LibRawImageDeleter>;

}  // namespace edgefleet::detail
