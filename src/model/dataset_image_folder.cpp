// ImageFolder: root/<class>/<image files>, plus open_dataset() and subset().
#include <algorithm>
#include <filesystem>
#include <set>

#include "edgefleet/dataset.h"
#include "edgefleet/decode.h"

namespace edgefleet {
namespace fs = std::filesystem;
namespace {

bool is_image_file(const fs::path& path) {
  static const std::set<std::string> kExtensions = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff",
                                                    ".ppm", ".pgm",  ".pnm", ".heic", ".heif", ".avif"};
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return kExtensions.count(ext) > 0;
}

class ImageFolder final : public Dataset {
 public:
  ImageFolder(std::string root, ClassList classes, std::vector<std::string> files, std::vector<int> labels)
      : root_(std::move(root)), classes_(std::move(classes)), files_(std::move(files)), labels_(std::move(labels)) {}

  std::string name() const override { return root_; }
  std::size_t size() const override { return files_.size(); }
  int label(std::size_t i) const override { return labels_[i]; }
  const ClassList& classes() const override { return classes_; }
  std::string item_name(std::size_t i) const override { return files_[i]; }
  Expected<Image> load(std::size_t i) const override {
    auto bytes = read_file_bytes(files_[i]);
    if (!bytes) return bytes.status();
    return decode_image(*bytes, files_[i]);
  }
  Expected<std::vector<std::uint8_t>> load_encoded(std::size_t i) const override { return read_file_bytes(files_[i]); }

 private:
  std::string root_;
  ClassList classes_;
  std::vector<std::string> files_;
  std::vector<int> labels_;
};

class Subset final : public Dataset {
 public:
  Subset(std::shared_ptr<const Dataset> base, std::vector<std::size_t> indices)
      : base_(std::move(base)), indices_(std::move(indices)) {}
  std::string name() const override { return base_->name() + " (subset of " + std::to_string(indices_.size()) + ")"; }
  std::size_t size() const override { return indices_.size(); }
  int label(std::size_t i) const override { return base_->label(indices_[i]); }
  const ClassList& classes() const override { return base_->classes(); }
  std::string item_name(std::size_t i) const override { return base_->item_name(indices_[i]); }
  Expected<Image> load(std::size_t i) const override { return base_->load(indices_[i]); }
  Expected<std::vector<std::uint8_t>> load_encoded(std::size_t i) const override {
    return base_->load_encoded(indices_[i]);
  }

 private:
  std::shared_ptr<const Dataset> base_;
  std::vector<std::size_t> indices_;
};

}  // namespace

Expected<std::shared_ptr<const Dataset>> open_image_folder(const std::string& root, const ImageFolderOptions& options) {
  return capture([&]() -> std::shared_ptr<const Dataset> {
    std::error_code ec;
    if (!fs::exists(root, ec)) throw Error(not_found("image-folder: no such folder '" + root + "'"));
    if (!fs::is_directory(root, ec)) throw Error(invalid_argument("image-folder: '" + root + "' is not a folder"));

    // Entries whose status cannot be read (a symbolic link loop, a dangling link) are not
    // class folders; an image-named one stays an item, and loading it reports why it fails.
    std::vector<std::string> folders;
    for (const auto& entry : fs::directory_iterator(root)) {
      if (entry.is_directory(ec)) folders.push_back(entry.path().filename().string());
    }
    std::sort(folders.begin(), folders.end());
    if (folders.empty()) {
      throw Error(invalid_argument("image-folder: '" + root + "' has no class sub-folders (expected root/<class>/<image>)"));
    }

    ClassList classes;
    const std::string labels_path = !options.labels_file.empty() ? options.labels_file : root + "/labels.txt";
    if (!options.labels_file.empty() || fs::exists(labels_path)) {
      classes = read_labels_file(labels_path).value();
    } else {
      classes.keys = folders;
      classes.names = folders;
    }

    std::vector<std::string> files;
    std::vector<int> labels;
    for (const auto& folder : folders) {
      const auto index = classes.index_of(folder);
      if (!index) {
        throw Error(invalid_argument("image-folder: class folder '" + folder + "' is not listed in '" + labels_path + "'"));
      }
      std::vector<std::string> class_files;
      for (const auto& entry : fs::directory_iterator(fs::path(root) / folder)) {
        if (!is_image_file(entry.path())) continue;
        if (entry.is_regular_file(ec) || (ec && entry.is_symlink(ec))) class_files.push_back(entry.path().string());
      }
      if (class_files.empty()) {
        throw Error(invalid_argument("image-folder: class folder '" + (fs::path(root) / folder).string() +
                                     "' holds no image files"));
      }
      std::sort(class_files.begin(), class_files.end());
      for (auto& file : class_files) {
        files.push_back(std::move(file));
        labels.push_back(*index);
      }
    }
    return std::make_shared<ImageFolder>(root, std::move(classes), std::move(files), std::move(labels));
  });
}

std::shared_ptr<const Dataset> subset(std::shared_ptr<const Dataset> base, std::vector<std::size_t> indices) {
  return std::make_shared<Subset>(std::move(base), std::move(indices));
}

}  // namespace edgefleet
