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
  // A thread's arena grows in 64 MB heaps, and glibc unmaps a heap as soon as it is empty
  // whatever the trim threshold: a thread that frees its large buffers (the camera's
  // megapixel images) then faults them in again, zeroed. A 64 MB top pad keeps such a heap.
  mallopt(M_TOP_PAD, 64 << 20);
}

}  // namespace edgefleet
