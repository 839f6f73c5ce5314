// Internal: the training layer every trainer shares — the optimiser and its schedule, in-memory
// training data, the SGD loop with optional knowledge distillation of porting's fine-tuning
// and peer tuning at the edge, and top-k accuracy.
#pragma once

#include <torch/optim/optimizer.h>
#include <torch/script.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "edgefleet/dataset.h"
#include "edgefleet/finetune.h"

namespace edgefleet {

// The optimiser of every trainer here: SGD with Nesterov momentum 0.9 (or AdamW, for
// fine-tuning that asks for it), the learning rate decaying from `learning_rate` to 0 along a
// cosine over `total_steps` steps, set per step. Callers own their sampling and loss; this
// owns what must be the same everywhere.
class CosineOptimizer {
 public:
  CosineOptimizer(std::vector<torch::Tensor> parameters, double learning_rate, double weight_decay, std::int64_t total_steps,
                  FinetuneOptimizer kind = FinetuneOptimizer::kSgd);
  // Step `step` (0-based): sets its learning rate, zeroes the gradients, evaluates `loss`,
  // back-propagates it and updates the parameters. Returns the loss.
  torch::Tensor step(std::int64_t step, const std::function<torch::Tensor()>& loss);
  // For checkpoints (torch::save / torch::load).
  torch::optim::Optimizer& optimizer() { return *optimizer_; }

 private:
  double learning_rate_;
  std::int64_t total_steps_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
};

struct TrainingData {
  // [N, C, H, W]: float in [0, 1] (zoo images), or fp16 model inputs (photos preprocessed by a
  // card: 7,000 at 224 pixels are 4.2 GB in fp32). Read batches through model_input.
  torch::Tensor images;
  torch::Tensor labels;  // int64 [N]
};

// Rows of TrainingData::images as a model takes them: fp32; uint8 scaled by 1/255.
torch::Tensor model_input(const torch::Tensor& images);
// Writes one preprocessed input (fp32 values of `row`'s shape) into `row`, converting to its type.
void write_model_input(torch::Tensor row, const std::vector<float>& input);

// `count` rows spread evenly over `data` (`held_out`), and the other rows (`rest`), each in
// their order: a held-out set that covers every class of data listed class by class (a photo
// folder's order). The rows are reordered in place — `data`'s tensors, shared with the
// caller's, end up as `all` — and both parts are views of it: 7,000 photos at 224 pixels are
// 4 GB, and no second copy is made.
struct HeldOutSplit {
  TrainingData all;
  TrainingData held_out;
  TrainingData rest;
};
HeldOutSplit hold_out_spread(TrainingData data, std::int64_t count);

// The listed items of a dataset of `size`x`size` images with `channels` channels, pixels
// scaled to [0, 1] and nothing else (zoo models normalise inside). Throws Error when an item
// is unreadable or of another shape.
TrainingData raw_images(const Dataset& dataset, const std::vector<std::size_t>& items, int channels, int size);

// A teacher's class probabilities at the distillation temperature for a batch of images.
using TeacherProbabilities = std::function<torch::Tensor(const torch::Tensor& images)>;

// `s.steps` SGD steps (Nesterov momentum, cosine decay from s.learning_rate) on random
// batches of `data`: cross-entropy on the labels, and with a teacher
// (1 - w) * CE + w * T^2 * KL(teacher || model) at temperature T = s.temperature,
// w = s.distill_weight. Parameters named in `frozen` are not updated. With s.patience > 0 and
// `validation`, stops on a validation plateau and restores the best weights (see
// FinetuneSettings). Leaves the module in eval mode; returns the steps taken.
// With `checkpoint`, the state at the start of every `every`-th step (the weights, momentum,
// random generator and plateau search) is written to its file, and a call that finds a
// checkpoint of the same run there (same recipe, seed, data size and parameter shapes)
// continues from it, to the weights an uninterrupted call reaches. The file is left for the
// caller to remove once it has kept the result.
struct FinetuneCheckpoint {
  std::string file;
  int every = 25;
};
int train_steps(torch::jit::Module& module, const TrainingData& data, const FinetuneSettings& s, std::uint64_t seed,
                const TeacherProbabilities& teacher = {}, const std::set<std::string>& frozen = {},
                const TrainingData* validation = nullptr, const FinetuneCheckpoint* checkpoint = nullptr);

// The probabilities of one module at a temperature, as a TeacherProbabilities.
TeacherProbabilities teacher_of(torch::jit::Module& module, double temperature);

// A deep copy whose parameters are leaves again (Module::clone under autograd makes them
// outputs of a clone op, which an optimiser refuses).
torch::jit::Module trainable_copy(const torch::jit::Module& module);

// Per row of `logits` [N, classes]: whether `labels[row]` is among its k highest scores (bool [N]).
torch::Tensor in_top_k(const torch::Tensor& logits, const torch::Tensor& labels, int k);

// Top-1 and top-5 accuracy of `module` (run in eval mode, its mode then restored) on
// `images` [N, C, H, W], converted a batch at a time by model_input.
struct TopAccuracy {
  double top1 = 0.0;
  double top5 = 0.0;
};
TopAccuracy top_accuracy(torch::jit::Module& module, const torch::Tensor& images, const torch::Tensor& labels);

// Top-1 accuracy of `module` (eval mode) on `data`.
double top1_accuracy(torch::jit::Module& module, const TrainingData& data);

}  // namespace edgefleet
