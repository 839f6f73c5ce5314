// Dataset: labelled images, by index. Two sources: Fashion-MNIST from the Debian package
// `dataset-fashion-mnist`, and ImageFolder (one sub-folder per class).
// Implementations are immutable after opening; load() is safe to call from many threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "edgefleet/image.h"
#include "edgefleet/labels.h"
#include "edgefleet/status.h"

namespace edgefleet {

class Dataset {
 public:
  virtual ~Dataset() = default;

  virtual std::string name() const = 0;
  virtual std::size_t size() const = 0;
  // The class index of item i, in [0, classes().size()).
  virtual int label(std::size_t i) const = 0;
  virtual const ClassList& classes() const = 0;
  // A human-readable id of item i: a file path, or "fashion-mnist:test[17]".
  virtual std::string item_name(std::size_t i) const = 0;
  // Decodes item i. Fails with corrupt/io_error for an unreadable file; callers report
  // the item and go on.
  virtual Expected<Image> load(std::size_t i) const = 0;
  // The encoded file of item i, for pipelines that start by decoding it; unsupported for
  // datasets stored as pixels (their pipelines start from load()).
  virtual Expected<std::vector<std::uint8_t>> load_encoded(std::size_t i) const {
    return unsupported(item_name(i) + ": stored as pixels, not as an encoded file");
  }
};

// Where the Debian package puts the IDX files.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

enum class FashionMnistSplit { kTrain, kTest };

// Opens Fashion-MNIST from `dir` (the four IDX files, gzipped or not). Fails with not_found
// when files are missing (naming the Debian package), corrupt on bad magic or counts.
Expected<std::shared_ptr<const Dataset>> open_fashion_mnist(FashionMnistSplit split,
                                                            const std::string& dir = kFashionMnistDir);

struct ImageFolderOptions {
  // Overrides the class order; otherwise `labels.txt` inside the folder, else sorted names.
  std::string labels_file;
};

// Opens an ImageFolder. Fails with not_found for a missing folder, invalid_argument for a
// folder with no class sub-folders, an empty class folder, or a folder not in the labels.
Expected<std::shared_ptr<const Dataset>> open_image_folder(const std::string& root,
                                                           const ImageFolderOptions& options = {});

// Opens a dataset named on the command line: "fashion-mnist" (the test split),
// "fashion-mnist:train", "fashion-mnist:test", or a path to an ImageFolder.
Expected<std::shared_ptr<const Dataset>> open_dataset(const std::string& spec,
                                                      const ImageFolderOptions& options = {});

// A view of `base` restricted to `indices` (in that order); labels and classes are base's.
std::shared_ptr<const Dataset> subset(std::shared_ptr<const Dataset> base, std::vector<std::size_t> indices);

// The named datasets (today "fashion-mnist") are known here and nowhere else: open_dataset
// opens them by name, and these say which specs name one and give its own splits.
bool names_builtin_dataset(const std::string& spec);  // "fashion-mnist", "fashion-mnist:test", ...

struct OfficialSplits {
  std::shared_ptr<const Dataset> train;
  std::shared_ptr<const Dataset> test;
};
// The training and test splits a named dataset ships with; nullopt for an image folder,
// which has none and is split with split_items().
Expected<std::optional<OfficialSplits>> open_official_splits(const std::string& spec);

// How one dataset's items are shared out when it has no official splits. Deterministic and
// interleaved, so every part sees every class of a folder listed class by class.
enum class SplitPolicy {
  kAlternate,  // 2 parts: even items, odd items (porting: adapt and fine-tune / measure)
  kTwoOneTwo,  // 3 parts: i % 5 in {0, 1}, {2}, {3, 4} (hardening: test / validation / train)
};
std::vector<std::vector<std::size_t>> split_items(std::size_t count, SplitPolicy policy);
// Items [first, count): those a run limited to its first `first` items leaves out.
std::vector<std::size_t> items_after(std::size_t first, std::size_t count);

}  // namespace edgefleet
