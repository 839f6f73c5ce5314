#include "imaging/magick_runtime.h"

#include <mutex>

#include <Magick++.h>
#include <vips/vips8>

namespace edgefleet::detail {

void ensure_magick_initialised() {
  static std::once_flag once;
  std::call_once(once, [] {
    Magick::InitializeMagick(nullptr);
    // One thread per call: the pipelines run many pictures in parallel already.
    Magick::ResourceLimits::thread(1);
  });
}

void ensure_vips_initialised() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (VIPS_INIT("edgefleet") != 0) vips_error_exit("cannot initialise libvips");
    // Buffers are transient: caching operations on them only holds memory.
    vips_cache_set_max(0);
    vips_concurrency_set(1);
    // Failures come back as typed errors; libvips' own warnings would only clutter stderr.
    g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING, [](const gchar*, GLogLevelFlags, const gchar*, gpointer) {}, nullptr);
  });
}

}  // namespace edgefleet::detail
