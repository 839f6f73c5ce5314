// Image: an 8-bit, interleaved (HWC) picture as the imaging stages hand it around.
// Channels: 1 = gray, 3 = RGB (always RGB order, never BGR), 4 = RGBA.
// A plain value type: copying copies the pixels; safe to share read-only between threads.
#pragma once

#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "edgefleet/status.h"

namespace edgefleet {

// Sizes a buffer without zero-filling it: every pixel buffer is written in full right after it
// is sized (by a decoder, a resizer, ...), and zeroing first costs a tenth of a fast resize.
template <typename T>
struct UninitializedAllocator : std::allocator<T> {
  template <typename U>
  struct rebind {
    using other = UninitializedAllocator<U>;
  };
  UninitializedAllocator() = default;
  template <typename U>
  UninitializedAllocator(const UninitializedAllocator<U>&) noexcept {}  // NOLINT: converting
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
using PixelBuffer = std::vector<std::uint8_t, UninitializedAllocator<std::uint8_t>>;

struct Image {
  int width = 0;
  int height = 0;
  int channels = 0;
  PixelBuffer pixels;  // height * width * channels bytes, row-major

  bool empty() const { return pixels.empty(); }
  std::size_t byte_size() const { return pixels.size(); }
  std::uint8_t at(int y, int x, int c) const { return pixels[(static_cast<std::size_t>(y) * width + x) * channels + c]; }
};

// Builds an image, checking that pixels.size() == width*height*channels.
Expected<Image> make_image(int width, int height, int channels, std::vector<std::uint8_t> pixels);

// Reads a whole file into memory. Fails with not_found / io_error, or invalid_argument when
// the file is larger than max_bytes (a guard against decompression bombs and huge uploads).
Expected<std::vector<std::uint8_t>> read_file_bytes(const std::string& path,
                                                    std::size_t max_bytes = 256u << 20);

}  // namespace edgefleet
