// Fashion-MNIST IDX reader (http://yann.lecun.com/exdb/mnist/ format), gzipped or plain.
#include <zlib.h>

#include <filesystem>

#include "edgefleet/dataset.h"

namespace edgefleet {
namespace {

constexpr std::uint32_t kImagesMagic = 2051;
constexpr std::uint32_t kLabelsMagic = 2049;

const char* const kClassNames[] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                   "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

// Reads a whole (possibly gzipped) file; zlib reads plain files transparently.
std::vector<std::uint8_t> read_maybe_gzipped(const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) throw Error(io_error("cannot open '" + path + "'"));
  std::vector<std::uint8_t> out;
  std::uint8_t chunk[1 << 16];
  int n = 0;
  while ((n = gzread(file, chunk, sizeof(chunk))) > 0) out.insert(out.end(), chunk, chunk + n);
  int err = 0;
  const char* message = gzerror(file, &err);
  const bool failed = n < 0 || (err != Z_OK && err != Z_STREAM_END);
  const std::string reason = failed ? std::string(message) : "";
  gzclose(file);
  if (failed) throw Error(corrupt("'" + path + "': " + reason));
  return out;
}

std::uint32_t read_be32(const std::vector<std::uint8_t>& bytes, std::size_t offset) {
  return (std::uint32_t{bytes[offset]} << 24) | (std::uint32_t{bytes[offset + 1]} << 16) |
         (std::uint32_t{bytes[offset + 2]} << 8) | std::uint32_t{bytes[offset + 3]};
}

std::string find_idx(const std::string& dir, const std::string& stem) {
  for (const auto& candidate : {dir + "/" + stem + ".gz", dir + "/" + stem}) {
    if (std::filesystem::exists(candidate)) return candidate;
  }
  throw Error(not_found("fashion-mnist: '" + dir + "/" + stem +
                        "[.gz]' is missing (install the Debian package dataset-fashion-mnist)"));
}

class FashionMnist final : public Dataset {
 public:
  FashionMnist(std::string split_name, std::vector<std::uint8_t> images, std::vector<std::uint8_t> labels,
               std::size_t count)
      : split_name_(std::move(split_name)), images_(std::move(images)), labels_(std::move(labels)), count_(count) {
    for (const char* name : kClassNames) {
      classes_.keys.emplace_back(name);
      classes_.names.emplace_back(name);
    }
  }

  std::string name() const override { return "fashion-mnist:" + split_name_; }
  std::size_t size() const override { return count_; }
  int label(std::size_t i) const override { return labels_[kLabelsHeader + i]; }
  const ClassList& classes() const override { return classes_; }
  std::string item_name(std::size_t i) const override { return name() + "[" + std::to_string(i) + "]"; }
  Expected<Image> load(std::size_t i) const override {
    if (i >= count_) return invalid_argument(name() + ": index " + std::to_string(i) + " out of range");
    const auto* begin = images_.data() + kImagesHeader + i * kPixels;
    return Image{kSide, kSide, 1, PixelBuffer(begin, begin + kPixels)};
  }

  static constexpr int kSide = 28;
  static constexpr std::size_t kPixels = 28 * 28;
  static constexpr std::size_t kImagesHeader = 16;
  static constexpr std::size_t kLabelsHeader = 8;

 private:
  std::string split_name_;
  std::vector<std::uint8_t> images_;
  std::vector<std::uint8_t> labels_;
  std::size_t count_;
  ClassList classes_;
};

}  // namespace

Expected<std::shared_ptr<const Dataset>> open_fashion_mnist(FashionMnistSplit split, const std::string& dir) {
  return capture([&]() -> std::shared_ptr<const Dataset> {
    if (!std::filesystem::is_directory(dir)) {
      throw Error(not_found("fashion-mnist: no such folder '" + dir +
                            "' (install the Debian package dataset-fashion-mnist)"));
    }
    const std::string prefix = split == FashionMnistSplit::kTrain ? "train" : "t10k";
    const std::string images_path = find_idx(dir, prefix + "-images-idx3-ubyte");
    const std::string labels_path = find_idx(dir, prefix + "-labels-idx1-ubyte");
    auto images = read_maybe_gzipped(images_path);
    auto labels = read_maybe_gzipped(labels_path);
    if (images.size() < FashionMnist::kImagesHeader || read_be32(images, 0) != kImagesMagic) {
      throw Error(corrupt("'" + images_path + "': not an IDX image file (bad magic number)"));
    }
    if (labels.size() < FashionMnist::kLabelsHeader || read_be32(labels, 0) != kLabelsMagic) {
      throw Error(corrupt("'" + labels_path + "': not an IDX label file (bad magic number)"));
    }
    const std::size_t count = read_be32(images, 4);
    if (read_be32(images, 8) != 28 || read_be32(images, 12) != 28) {
      throw Error(corrupt("'" + images_path + "': images are not 28x28"));
    }
    if (images.size() != FashionMnist::kImagesHeader + count * FashionMnist::kPixels) {
      throw Error(corrupt("'" + images_path + "': header says " + std::to_string(count) + " images but the file holds " +
                          std::to_string(images.size()) + " bytes (truncated?)"));
    }
    if (read_be32(labels, 4) != count || labels.size() != FashionMnist::kLabelsHeader + count) {
      throw Error(corrupt("'" + labels_path + "': label count does not match the " + std::to_string(count) + " images"));
    }
    for (std::size_t i = 0; i < count; ++i) {
      if (labels[FashionMnist::kLabelsHeader + i] > 9) {
        throw Error(corrupt("'" + labels_path + "': label " + std::to_string(labels[FashionMnist::kLabelsHeader + i]) +
                            " at item " + std::to_string(i) + " is outside 0..9"));
      }
    }
    return std::make_shared<FashionMnist>(split == FashionMnistSplit::kTrain ? "train" : "test", std::move(images),
                                          std::move(labels), count);
  });
}

}  // namespace edgefleet
