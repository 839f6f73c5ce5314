// Evaluation: a classifier over a dataset — top-1/top-5, per-class accuracy, the most
// frequent confusions and throughput. Unreadable items are reported and skipped.
// Uses the classifier exclusively while it runs.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "edgefleet/classifier.h"
#include "edgefleet/dataset.h"

namespace edgefleet {

struct EvalOptions {
  int batch_size = 32;
  std::size_t limit = 0;  // >0: only the first N items
  std::size_t top_confusions = 10;
  std::function<void(std::size_t done, std::size_t total)> on_progress;
};

struct ClassAccuracy {
  std::string name;
  std::size_t images = 0;
  std::size_t correct = 0;
};

struct Confusion {
  int truth = 0;
  int predicted = 0;
  std::size_t count = 0;
};

struct SkippedItem {
  std::string item;
  std::string reason;
};

struct EvalReport {
  std::string model;
  std::string engine;
  std::string dataset;
  std::size_t images = 0;  // evaluated (skipped ones excluded)
  double top1 = 0.0;
  double top5 = 0.0;
  std::vector<ClassAccuracy> per_class;  // classes with at least one image
  std::vector<Confusion> confusions;     // most frequent wrong (truth, predicted) pairs
  std::vector<SkippedItem> skipped;
  double seconds = 0.0;
  double images_per_second = 0.0;            // end to end: decode, preprocess, inference
  double inference_images_per_second = 0.0;  // inference alone
};

// Fails with invalid_argument when the dataset has more classes than the model outputs,
// or with the engine's error when inference fails. Decode failures are not errors.
Expected<EvalReport> evaluate(Classifier& classifier, const Dataset& dataset, const EvalOptions& options = {});

nlohmann::json eval_report_to_json(const EvalReport& report);

}  // namespace edgefleet
