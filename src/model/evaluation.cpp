#include "edgefleet/evaluation.h"

#include <algorithm>
#include <chrono>
#include <future>
#include <map>
#include <nlohmann/json.hpp>

#include "core/top_k.h"
#include "edgefleet/preprocess.h"

namespace edgefleet {
namespace {

using Clock = std::chrono::steady_clock;

struct PreparedBatch {
  std::vector<float> inputs;
  std::vector<int> labels;
  std::vector<SkippedItem> skipped;
};

PreparedBatch prepare(const Dataset& dataset, const InputContract& contract, std::size_t begin, std::size_t end) {
  PreparedBatch batch;
  for (std::size_t i = begin; i < end; ++i) {
    auto image = dataset.load(i);
    if (!image) {
      batch.skipped.push_back({dataset.item_name(i), image.status().message()});
      continue;
    }
    auto input = preprocess(*image, contract);
    if (!input) {
      batch.skipped.push_back({dataset.item_name(i), input.status().message()});
      continue;
    }
    batch.inputs.insert(batch.inputs.end(), input->begin(), input->end());
    batch.labels.push_back(dataset.label(i));
  }
  return batch;
}

}  // namespace

Expected<EvalReport> evaluate(Classifier& classifier, const Dataset& dataset, const EvalOptions& options) {
  const ModelCard& card = classifier.card();
  const int classes = card.classes;
  if (static_cast<int>(dataset.classes().size()) > classes) {
    return invalid_argument("dataset '" + dataset.name() + "' has " + std::to_string(dataset.classes().size()) +
                            " classes but model '" + card.name + "' outputs " + std::to_string(classes));
  }
  if (options.batch_size <= 0) return invalid_argument("batch size must be positive");
  const std::size_t total = options.limit > 0 ? std::min(options.limit, dataset.size()) : dataset.size();
  const std::size_t batch_size = static_cast<std::size_t>(options.batch_size);

  EvalReport report;
  report.model = card.name;
  report.engine = classifier.engine();
  report.dataset = dataset.name();
  std::vector<std::size_t> class_images(classes, 0), class_correct(classes, 0);
  std::map<std::pair<int, int>, std::size_t> confusion_counts;
  std::size_t top1 = 0, top5 = 0;
  double inference_seconds = 0.0;
  const int k = std::min(5, classes);

  const auto started = Clock::now();
  // Decode and preprocess the next batch while the current one runs inference.
  auto next = std::async(std::launch::async, prepare, std::cref(dataset), std::cref(card.input), 0, std::min(total, batch_size));
  for (std::size_t begin = 0; begin < total; begin += batch_size) {
    PreparedBatch batch = next.get();
    const std::size_t next_begin = begin + batch_size;
    if (next_begin < total) {
      next = std::async(std::launch::async, prepare, std::cref(dataset), std::cref(card.input), next_begin,
                        std::min(total, next_begin + batch_size));
    }
    report.skipped.insert(report.skipped.end(), batch.skipped.begin(), batch.skipped.end());
    const int n = static_cast<int>(batch.labels.size());
    if (n > 0) {
      const auto inference_started = Clock::now();
      auto logits = classifier.infer(batch.inputs.data(), n);
      inference_seconds += std::chrono::duration<double>(Clock::now() - inference_started).count();
      if (!logits) {
        if (next.valid()) next.wait();
        return logits.status();
      }
      for (int i = 0; i < n; ++i) {
        const float* row = logits->data() + static_cast<std::size_t>(i) * classes;
        const std::vector<int> order = top_k_indices(row, classes, k);
        const int truth = batch.labels[i];
        class_images[truth]++;
        if (order[0] == truth) {
          ++top1;
          class_correct[truth]++;
        } else {
          confusion_counts[{truth, order[0]}]++;
        }
        if (std::find(order.begin(), order.end(), truth) != order.end()) ++top5;
      }
      report.images += static_cast<std::size_t>(n);
    }
    if (options.on_progress) options.on_progress(std::min(total, begin + batch_size), total);
  }
  report.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  if (report.images > 0) {
    report.top1 = static_cast<double>(top1) / report.images;
    report.top5 = static_cast<double>(top5) / report.images;
    report.images_per_second = report.images / std::max(report.seconds, 1e-9);
    report.inference_images_per_second = report.images / std::max(inference_seconds, 1e-9);
  }
  const auto& names = dataset.classes().names;
  for (int c = 0; c < classes; ++c) {
    if (class_images[c] == 0) continue;
    const std::string name = c < static_cast<int>(names.size()) ? names[c] : std::to_string(c);
    report.per_class.push_back({name, class_images[c], class_correct[c]});
  }
  for (const auto& [pair, count] : confusion_counts) report.confusions.push_back({pair.first, pair.second, count});
  std::sort(report.confusions.begin(), report.confusions.end(), [](const Confusion& a, const Confusion& b) {
    return a.count != b.count ? a.count > b.count : std::tie(a.truth, a.predicted) < std::tie(b.truth, b.predicted);
  });
  if (report.confusions.size() > options.top_confusions) report.confusions.resize(options.top_confusions);
  return report;
}

nlohmann::json eval_report_to_json(const EvalReport& report) {
  using nlohmann::json;
  json per_class = json::array();
  for (const auto& c : report.per_class) {
    per_class.push_back({{"class", c.name}, {"images", c.images}, {"top1", static_cast<double>(c.correct) / c.images}});
  }
  json confusions = json::array();
  for (const auto& c : report.confusions) {
    confusions.push_back({{"truth", c.truth}, {"predicted", c.predicted}, {"count", c.count}});
  }
  json skipped = json::array();
  for (const auto& s : report.skipped) skipped.push_back({{"item", s.item}, {"reason", s.reason}});
  return {{"model", report.model},
          {"engine", report.engine},
          {"dataset", report.dataset},
          {"images", report.images},
          {"top1", report.top1},
          {"top5", report.top5},
          {"per_class", per_class},
          {"confusions", confusions},
          {"skipped", skipped},
          {"seconds", report.seconds},
          {"images_per_second", report.images_per_second},
          {"inference_images_per_second", report.inference_images_per_second}};
}

}  // namespace edgefleet
