// libFuzzer entry point: every decoder on arbitrary bytes must return an image or a typed
// error — never crash, hang, leak or touch memory it does not own.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "edgefleet/decode.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  using edgefleet::Decoder;
  static const Decoder kDecoders[] = {Decoder::kAuto,   Decoder::kTurboJpeg, Decoder::kOpenCv, Decoder::kMagick,
                                      Decoder::kVips,   Decoder::kLibPng,    Decoder::kLibWebp, Decoder::kLibHeif};
  // The first byte picks the decoder and its knobs; the rest is the file.
  edgefleet::DecodeOptions options;
  options.decoder = kDecoders[data[0] % 8];
  options.dct = static_cast<edgefleet::DctMethod>((data[0] >> 3) % 3);
  options.fancy_upsampling = (data[0] & 0x40) != 0;
  options.apply_orientation = (data[0] & 0x80) != 0;
  options.limits.max_pixels = 4'000'000;  // keep each run fast; the limit itself is under test
  const std::vector<std::uint8_t> bytes(data + 1, data + size);
  auto image = edgefleet::decode_image(bytes, "fuzz", options);
  if (image) {
    // The contract the rest of edgefleet relies on.
    if (image->pixels.size() != static_cast<std::size_t>(image->width) * image->height * image->channels) __builtin_trap();
    if (image->channels != 1 && image->channels != 3) __builtin_trap();
  }
  return 0;
}
