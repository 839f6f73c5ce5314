// Internal: what a `threads` option of 0 means everywhere — one thread per core. (libtorch's
// own default can be 1 on small VMs, which would halve throughput on 2 cores.)
#pragma once

#include <algorithm>
#include <thread>

namespace edgefleet {

inline int resolve_thread_count(int requested) {
  return requested > 0 ? requested : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace edgefleet
