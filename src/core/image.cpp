#include "edgefleet/image.h"

#include <filesystem>
#include <fstream>

namespace edgefleet {

Expected<Image> make_image(int width, int height, int channels, std::vector<std::uint8_t> pixels) {
  if (width <= 0 || height <= 0) {
    return invalid_argument("image size must be positive, got " + std::to_string(width) + "x" +
                            std::to_string(height));
  }
  if (channels != 1 && channels != 3 && channels != 4) {
    return invalid_argument("image channels must be 1, 3 or 4, got " + std::to_string(channels));
  }
  const std::size_t expected = static_cast<std::size_t>(width) * height * channels;
  if (pixels.size() != expected) {
    return invalid_argument("image of " + std::to_string(width) + "x" + std::to_string(height) + "x" +
                            std::to_string(channels) + " needs " + std::to_string(expected) +
                            " bytes, got " + std::to_string(pixels.size()));
  }
  return Image{width, height, channels, PixelBuffer(pixels.begin(), pixels.end())};
}

Expected<std::vector<std::uint8_t>> read_file_bytes(const std::string& path, std::size_t max_bytes) {
  std::error_code ec;
  const bool exists = std::filesystem::exists(path, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) return io_error("cannot read '" + path + "': " + ec.message());
  if (!exists) return not_found("no such file '" + path + "'");
  if (std::filesystem::is_directory(path, ec)) return invalid_argument("'" + path + "' is a folder, expected a file");
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return io_error("cannot stat '" + path + "': " + ec.message());
  if (size > max_bytes) {
    return invalid_argument("'" + path + "' is " + std::to_string(size) + " bytes, over the limit of " +
                            std::to_string(max_bytes));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_error("cannot open '" + path + "' for reading");
  std::vector<std::uint8_t> bytes(size);
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size))) {
    return io_error("short read on '" + path + "'");
  }
  return bytes;
}

}  // namespace edgefleet
