// The named datasets and how datasets are split: the one place that knows "fashion-mnist".
#include <numeric>

#include "edgefleet/dataset.h"

namespace edgefleet {
namespace {

constexpr const char* kFashionMnist = "fashion-mnist";

}  // namespace

bool names_builtin_dataset(const std::string& spec) {
  return spec == kFashionMnist || spec.rfind(std::string(kFashionMnist) + ":", 0) == 0;
}

Expected<std::shared_ptr<const Dataset>> open_dataset(const std::string& spec, const ImageFolderOptions& options) {
  if (!names_builtin_dataset(spec)) return open_image_folder(spec, options);
  if (spec == kFashionMnist || spec == "fashion-mnist:test") return open_fashion_mnist(FashionMnistSplit::kTest);
  if (spec == "fashion-mnist:train") return open_fashion_mnist(FashionMnistSplit::kTrain);
  return invalid_argument("dataset '" + spec + "': expected fashion-mnist, fashion-mnist:train or fashion-mnist:test");
}

Expected<std::optional<OfficialSplits>> open_official_splits(const std::string& spec) {
  if (!names_builtin_dataset(spec)) return std::optional<OfficialSplits>();
  auto train = open_dataset("fashion-mnist:train");
  if (!train) return train.status();
  auto test = open_dataset("fashion-mnist:test");
  if (!test) return test.status();
  return std::optional<OfficialSplits>(OfficialSplits{*train, *test});
}

std::vector<std::vector<std::size_t>> split_items(std::size_t count, SplitPolicy policy) {
  const std::vector<int> part_of_residue = policy == SplitPolicy::kAlternate ? std::vector<int>{0, 1} : std::vector<int>{0, 0, 1, 2, 2};
  std::vector<std::vector<std::size_t>> parts(static_cast<std::size_t>(part_of_residue.back()) + 1);
  for (std::size_t i = 0; i < count; ++i) parts[static_cast<std::size_t>(part_of_residue[i % part_of_residue.size()])].push_back(i);
  return parts;
}

std::vector<std::size_t> items_after(std::size_t first, std::size_t count) {
  std::vector<std::size_t> items(count > first ? count - first : 0);
  std::iota(items.begin(), items.end(), first);
  return items;
}

}  // namespace edgefleet
