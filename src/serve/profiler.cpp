#include "edgefleet/profiler.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>

#include "edgefleet/classifier.h"
#include "edgefleet/latency_tracker.h"

namespace edgefleet {
namespace fs = std::filesystem;

Expected<std::vector<ZooProfile>> profile_repository(const std::string& dir, const ProfileOptions& options) {
  return capture([&]() -> std::vector<ZooProfile> {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) throw Error(not_found("repository '" + dir + "' is not a folder"));
    if (options.runs < 2 || options.warmup < 0 || options.batch < 1) {
      throw Error(invalid_argument("profile: need at least 2 runs, a non-negative warm-up and a positive batch"));
    }
    std::vector<std::string> cards;
    for (const auto& entry : fs::recursive_directory_iterator(dir)) {
      if (entry.is_regular_file() && entry.path().extension() == ".json") cards.push_back(entry.path().string());
    }
    std::sort(cards.begin(), cards.end());
    std::map<std::string, ZooProfile> tasks;
    for (const auto& path : cards) {
      auto card = read_card(path);
      if (!card) continue;  // not every JSON file in a repository is a model card
      if (!card->accuracy) throw Error(invalid_argument(path + ": card has no accuracy (run `edgefleet eval` and record it)"));
      auto model = load_classifier(*card, {true, options.threads}).value();
      const auto& in = card->input;
      std::vector<float> input(static_cast<std::size_t>(options.batch) * in.channels() * in.height * in.width, 0.5f);
      LatencyTracker tracker({options.warmup, 0.0, 10.0, 5});
      for (int i = 0; i < options.warmup + options.runs; ++i) {
        const auto start = std::chrono::steady_clock::now();
        model->infer(input.data(), options.batch).value();
        tracker.add(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
      }
      const std::string task = !card->task.empty() ? card->task : fs::path(path).parent_path().filename().string();
      ZooProfile& zoo = tasks[task];
      zoo.name = task;
      zoo.variants.push_back({card->name, card->accuracy->top1, tracker.mean_ms(), tracker.std_ms()});
      if (options.on_variant) options.on_variant(card->name, tracker.mean_ms(), tracker.std_ms());
    }
    if (tasks.empty()) throw Error(not_found("repository '" + dir + "' holds no model cards"));
    std::vector<ZooProfile> out;
    for (auto& [name, zoo] : tasks) {
      const auto fastest = std::min_element(zoo.variants.begin(), zoo.variants.end(),
                                            [](const VariantProfile& a, const VariantProfile& b) { return a.mean_ms < b.mean_ms; });
      zoo.on_device = *fastest;
      out.push_back(std::move(zoo));
    }
    return out;
  });
}

}  // namespace edgefleet
