// Internal: in-memory training data and the SGD loop with optional knowledge distillation
// that porting's fine-tuning and peer tuning at the edge share.
#pragma once

#include <torch/script.h>

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "edgefleet/dataset.h"
#include "edgefleet/finetune.h"

namespace edgefleet {

struct TrainingData {
  torch::Tensor images;  // float [N, C, H, W] in [0, 1]
  torch::Tensor labels;  // int64 [N]
};

// The listed items of a dataset of `size`x`size` images with `channels` channels, pixels
// scaled to [0, 1] and nothing else (zoo models normalise inside). Throws Error when an item
// is unreadable or of another shape.
TrainingData raw_images(const Dataset& dataset, const std::vector<std::size_t>& items, int channels, int size);

// A teacher's class probabilities at the distillation temperature for a batch of images.
using TeacherProbabilities = std::function<torch::Tensor(const torch::Tensor& images)>;

// `s.steps` SGD steps (Nesterov momentum, cosine decay from s.learning_rate) on random
// batches of `data`: cross-entropy on the labels, and with a teacher
// (1 - w) * CE + w * T^2 * KL(teacher || model) at temperature T = s.temperature,
// w = s.distill_weight. Parameters named in `frozen` are not updated. Leaves the module in
// eval mode.
void train_steps(torch::jit::Module& module, const TrainingData& data, const FinetuneSettings& s, std::uint64_t seed,
                 const TeacherProbabilities& teacher = {}, const std::set<std::string>& frozen = {});

// The probabilities of one module at a temperature, as a TeacherProbabilities.
TeacherProbabilities teacher_of(torch::jit::Module& module, double temperature);

// A deep copy whose parameters are leaves again (Module::clone under autograd makes them
// outputs of a clone op, which an optimiser refuses).
torch::jit::Module trainable_copy(const torch::jit::Module& module);

// Top-1 accuracy of `module` (eval mode) on `data`.
double top1_accuracy(torch::jit::Module& module, const TrainingData& data);

}  // namespace edgefleet
