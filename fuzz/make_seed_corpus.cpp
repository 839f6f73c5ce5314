// Writes one small picture per format (and per decoder selector byte) as the fuzz seeds.
#include <fstream>
#include <iostream>
#include <string>

#include "edgefleet/encode.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_seed_corpus DIR\n";
    return 2;
  }
  edgefleet::Image image;
  image.width = 24;
  image.height = 16;
  image.channels = 3;
  for (int i = 0; i < image.width * image.height; ++i) {
    image.pixels.insert(image.pixels.end(), {static_cast<std::uint8_t>(i * 7), static_cast<std::uint8_t>(i * 3), 90});
  }
  int written = 0;
  for (auto format : {edgefleet::ImageFormat::kJpeg, edgefleet::ImageFormat::kPng, edgefleet::ImageFormat::kWebp,
                      edgefleet::ImageFormat::kHeif}) {
    edgefleet::EncodeOptions options;
    options.format = format;
    auto bytes = edgefleet::encode_image(image, options);
    if (!bytes) continue;  // e.g. no HEVC encoder
    for (std::uint8_t selector = 0; selector < 8; ++selector) {
      std::ofstream out(std::string(argv[1]) + "/" + edgefleet::image_format_name(format) + "-" +
                            std::to_string(selector),
                        std::ios::binary);
      out.put(static_cast<char>(selector | 0xC0));
      out.write(reinterpret_cast<const char*>(bytes->data()), static_cast<std::streamsize>(bytes->size()));
      ++written;
    }
  }
  std::cout << written << " seeds in " << argv[1] << "\n";
  return 0;
}
