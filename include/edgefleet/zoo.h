// The built-in zoo: functionally-equivalent Fashion-MNIST classifiers of increasing cost,
// defined as data (ArchSpec + training recipe) and trained reproducibly from a seed.
// builtin_zoo() is a pure function; train_zoo_model() uses the process-wide torch thread pool.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "edgefleet/architecture.h"
#include "edgefleet/dataset.h"
#include "edgefleet/model_card.h"

namespace edgefleet {

struct TrainRecipe {
  int epochs = 10;
  int batch_size = 128;
  double learning_rate = 0.05;  // SGD, Nesterov momentum 0.9, cosine decay to 0
  double weight_decay = 5e-4;
  int pad_crop = 2;             // random crop after zero padding by this many pixels
  bool horizontal_flip = true;
  std::uint64_t seed = 1;
};

struct ZooEntry {
  std::string name;
  std::string description;
  ArchSpec arch;
  TrainRecipe recipe;
};

// The built-in family, cheapest first.
std::vector<ZooEntry> builtin_zoo();

struct TrainProgress {
  std::string model;
  int epoch = 0;  // 1-based, finished epochs
  int epochs = 0;
  double train_loss = 0.0;
  double test_top1 = 0.0;
  double seconds = 0.0;
};

struct TrainOptions {
  std::string out_dir;            // writes <name>.pt and <name>.json here
  std::string fashion_mnist_dir = kFashionMnistDir;
  int threads = 0;                // 0 = leave torch's default
  std::size_t train_limit = 0;    // >0: use only the first N training images (tests)
  std::size_t test_limit = 0;
  int epochs_override = 0;        // >0: replaces the recipe's epochs (tests)
  std::function<void(const TrainProgress&)> on_epoch;
};

// Trains one zoo model and writes its TorchScript file and card. Resumable: a checkpoint is
// kept after every epoch in <out_dir>/<name>.checkpoint/ and picked up by the next call.
// Returns the written card.
Expected<ModelCard> train_zoo_model(const ZooEntry& entry, const TrainOptions& options);

}  // namespace edgefleet
