// Internal: glibc malloc settings for a process that runs models.
#pragma once

namespace edgefleet {

// Inference allocates the same large activation buffers on every forward pass. With glibc's
// defaults, a freed buffer above the mmap threshold (dynamic, at most 32 MB) is unmapped and
// the heap top above 128 KB is given back to the kernel, so the next pass page-faults its
// buffers in again, zeroed by the kernel: MobileNetV2 on one thread took 49 ms per image at
// batch 1 and 291 ms per batch of 8 instead of 11 and 110 ms (measured on this project's
// 2-core VM, in PyTorch as in libtorch). This keeps freed memory for reuse (blocks under
// 256 MB come from the heap; the heap is trimmed above 512 MB free; a thread's emptied heap is
// kept) and bounds the arenas to two per core, so that the process holds its peak heap once
// instead of one per thread.
// EDGEFLEET_MALLOC_DEFAULTS=1 keeps glibc's defaults (for comparisons). Call once, early.
void keep_freed_memory_for_reuse();

}  // namespace edgefleet
