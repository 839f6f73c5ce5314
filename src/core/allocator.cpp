#include "core/allocator.h"

#include <malloc.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace edgefleet {

void keep_freed_memory_for_reuse() {
  const char* defaults = std::getenv("EDGEFLEET_MALLOC_DEFAULTS");
  if (defaults && std::strcmp(defaults, "1") == 0) return;
  mallopt(M_ARENA_MAX, 2 * static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
}

}  // namespace edgefleet
