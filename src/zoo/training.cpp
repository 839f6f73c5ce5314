// The shared optimiser, the SGD loop with optional distillation, and top-k accuracy on
// in-memory data.
#include "zoo/training.h"

#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>
#include <torch/serialize.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>

#include "core/atomic_file.h"

namespace edgefleet {

CosineOptimizer::CosineOptimizer(std::vector<torch::Tensor> parameters, double learning_rate, double weight_decay, std::int64_t total_steps,
                                 FinetuneOptimizer kind)
    : learning_rate_(learning_rate), total_steps_(std::max<std::int64_t>(total_steps, 1)) {
  if (kind == FinetuneOptimizer::kAdamW) {
    optimizer_ = std::make_unique<torch::optim::AdamW>(std::move(parameters), torch::optim::AdamWOptions(learning_rate).weight_decay(weight_decay));
  } else {
    optimizer_ = std::make_unique<torch::optim::SGD>(std::move(parameters),
                                                     torch::optim::SGDOptions(learning_rate).momentum(0.9).nesterov(true).weight_decay(weight_decay));
  }
}

torch::Tensor CosineOptimizer::step(std::int64_t step, const std::function<torch::Tensor()>& loss) {
  const double lr = 0.5 * learning_rate_ * (1 + std::cos(M_PI * static_cast<double>(step) / static_cast<double>(total_steps_)));
  for (auto& group : optimizer_->param_groups()) group.options().set_lr(lr);
  optimizer_->zero_grad();
  torch::Tensor value = loss();
  value.backward();
  optimizer_->step();
  return value;
}

namespace {

// Every parameter and buffer, copied: the best weights a plateau search keeps.
std::vector<torch::Tensor> snapshot(const torch::jit::Module& module) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> out;
  for (const auto& p : module.parameters()) out.push_back(p.detach().clone());
  for (const auto& b : module.buffers()) out.push_back(b.detach().clone());
  return out;
}

void restore(torch::jit::Module& module, const std::vector<torch::Tensor>& saved) {
  torch::NoGradGuard no_grad;
  std::size_t i = 0;
  for (const auto& p : module.parameters()) p.copy_(saved[i++]);
  for (const auto& b : module.buffers()) b.copy_(saved[i++]);
}

// What a fine-tuning must match to continue from a checkpoint: its recipe, seed, data size and
// the shapes it trains (a checkpoint of another run is not resumed).
torch::Tensor run_identity(const torch::jit::Module& module, const TrainingData& data, const FinetuneSettings& s, std::uint64_t seed) {
  std::vector<double> id = {static_cast<double>(s.steps), static_cast<double>(s.batch), s.learning_rate, s.distill_weight, s.temperature,
                            static_cast<double>(s.patience), static_cast<double>(s.check_every), static_cast<double>(seed % (1ull << 52)),
                            static_cast<double>(data.images.size(0)), s.augment ? 1.0 : 0.0, s.frozen_batch_norm ? 1.0 : 0.0, s.min_gain};
  for (const auto& p : module.parameters()) id.push_back(static_cast<double>(p.numel()));
  if (s.optimizer != FinetuneOptimizer::kSgd) id.push_back(static_cast<double>(s.optimizer));  // SGD checkpoints written before it existed still resume
  // Photos stored in fp16 since: a checkpoint trained on fp32 photos is another run's.
  if (data.images.scalar_type() == torch::kHalf) id.push_back(-16.0);
  return torch::tensor(id, torch::kFloat64);
}

// The state of a fine-tuning at the start of `step`, written whole or not at all.
struct FinetuneState {
  std::int64_t step = 0;
  double best = -1.0;
  std::int64_t checks_without_gain = 0;
  std::vector<torch::Tensor> weights, best_weights;
  torch::Tensor generator;
};

void save_state(const std::string& file, const torch::Tensor& identity, const FinetuneState& state, torch::optim::Optimizer& optimizer) {
  torch::serialize::OutputArchive archive;
  archive.write("identity", identity);
  archive.write("counters", torch::tensor({static_cast<double>(state.step), state.best, static_cast<double>(state.checks_without_gain)}, torch::kFloat64));
  archive.write("generator", state.generator);
  archive.write("weights", static_cast<std::int64_t>(state.weights.size()));
  for (std::size_t i = 0; i < state.weights.size(); ++i) archive.write("weight." + std::to_string(i), state.weights[i]);
  archive.write("best_weights", static_cast<std::int64_t>(state.best_weights.size()));
  for (std::size_t i = 0; i < state.best_weights.size(); ++i) archive.write("best." + std::to_string(i), state.best_weights[i]);
  torch::serialize::OutputArchive optimizer_archive;
  optimizer.save(optimizer_archive);
  archive.write("optimizer", optimizer_archive);
  replace_atomically(file, [&](const std::string& tmp) { archive.save_to(tmp); });
}

// The state in `file` when it is a checkpoint of the run `identity` names (the optimizer
// loaded with its momentum); nullopt otherwise (no file, another run's, unreadable).
std::optional<FinetuneState> load_state(const std::string& file, const torch::Tensor& identity, torch::optim::Optimizer& optimizer) {
  if (!std::filesystem::exists(file)) return std::nullopt;
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(file);
    torch::Tensor saved_identity, counters;
    archive.read("identity", saved_identity);
    if (!saved_identity.sizes().equals(identity.sizes()) || !torch::equal(saved_identity, identity)) return std::nullopt;
    FinetuneState state;
    archive.read("counters", counters);
    state.step = static_cast<std::int64_t>(counters[0].item<double>());
    state.best = counters[1].item<double>();
    state.checks_without_gain = static_cast<std::int64_t>(counters[2].item<double>());
    archive.read("generator", state.generator);
    c10::IValue count;
    archive.read("weights", count);
    state.weights.resize(static_cast<std::size_t>(count.toInt()));
    for (std::size_t i = 0; i < state.weights.size(); ++i) archive.read("weight." + std::to_string(i), state.weights[i]);
    archive.read("best_weights", count);
    state.best_weights.resize(static_cast<std::size_t>(count.toInt()));
    for (std::size_t i = 0; i < state.best_weights.size(); ++i) archive.read("best." + std::to_string(i), state.best_weights[i]);
    torch::serialize::InputArchive optimizer_archive;
    archive.read("optimizer", optimizer_archive);
    optimizer.load(optimizer_archive);
    return state;
  } catch (const c10::Error&) {
    return std::nullopt;
  }
}

}  // namespace

int train_steps(torch::jit::Module& module, const TrainingData& data, const FinetuneSettings& s, std::uint64_t seed,
                const TeacherProbabilities& teacher, const std::set<std::string>& frozen, const TrainingData* validation,
                const FinetuneCheckpoint* checkpoint) {
  if (s.steps <= 0) return 0;
  const bool plateau = s.patience > 0 && validation != nullptr && validation->images.size(0) > 0;
  double best = -1.0;
  std::vector<torch::Tensor> best_weights;
  int checks_without_gain = 0;
  auto check = [&] {
    const double accuracy = top1_accuracy(module, *validation);
    if (accuracy > best + s.min_gain) {
      best = accuracy;
      best_weights = snapshot(module);
      checks_without_gain = 0;
    } else {
      ++checks_without_gain;
    }
    return checks_without_gain >= s.patience;
  };
  std::vector<torch::Tensor> parameters;
  for (const auto& p : module.named_parameters()) {
    if (frozen.count(p.name)) {
      p.value.set_requires_grad(false);
    } else {
      parameters.push_back(p.value.set_requires_grad(true));
    }
  }
  CosineOptimizer optimizer(parameters, s.learning_rate, 1e-4, s.steps, s.optimizer);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  const torch::Tensor identity = checkpoint ? run_identity(module, data, s, seed) : torch::Tensor();
  int first = 0;
  if (checkpoint) {
    if (auto state = load_state(checkpoint->file, identity, optimizer.optimizer())) {
      restore(module, state->weights);
      best = state->best;
      best_weights = std::move(state->best_weights);
      checks_without_gain = static_cast<int>(state->checks_without_gain);
      generator.set_state(state->generator);
      first = static_cast<int>(state->step);
    }
  }
  if (plateau && first == 0) check();
  module.train(!s.frozen_batch_norm);
  const auto n = data.images.size(0);
  const bool distill = teacher && s.distill && s.distill_weight > 0;
  int step = first;
  bool stopped = false;
  for (; step < s.steps; ++step) {
    // A resumed run starts after its step's check and save.
    if (plateau && step > first && step % std::max(1, s.check_every) == 0 && (stopped = check())) break;
    if (checkpoint && step > first && step % std::max(1, checkpoint->every) == 0) {
      save_state(checkpoint->file, identity, {step, best, checks_without_gain, snapshot(module), best_weights, generator.get_state()},
                 optimizer.optimizer());
    }
    const auto index = at::randint(n, {std::min<std::int64_t>(s.batch, n)}, generator, torch::kInt64);
    auto x = model_input(data.images.index_select(0, index));
    const auto y = data.labels.index_select(0, index);
    if (s.augment) {
      const auto flip = at::rand({x.size(0), 1, 1, 1}, generator) < 0.5;
      x = torch::where(flip, x.flip({3}), x);
      const auto reach = std::max<std::int64_t>(1, x.size(3) / 16);
      const auto dy = at::randint(-reach, reach + 1, {1}, generator, torch::kInt64).item<std::int64_t>();
      const auto dx = at::randint(-reach, reach + 1, {1}, generator, torch::kInt64).item<std::int64_t>();
      x = x.roll({dy, dx}, {2, 3});
    }
    optimizer.step(step, [&] {
      const auto logits = module.forward({x}).toTensor();
      auto loss = torch::nn::functional::cross_entropy(logits, y);
      if (distill) {
        torch::Tensor target;
        {
          torch::NoGradGuard no_grad;
          target = teacher(x);
        }
        const auto kl = torch::kl_div(torch::log_softmax(logits / s.temperature, 1), target, at::Reduction::Sum) / static_cast<double>(x.size(0));
        loss = (1 - s.distill_weight) * loss + s.distill_weight * s.temperature * s.temperature * kl;
      }
      return loss;
    });
  }
  if (plateau) {
    if (!stopped) check();
    restore(module, best_weights);
  }
  module.eval();
  return step;
}

HeldOutSplit hold_out_spread(TrainingData data, std::int64_t count) {
  const std::int64_t n = data.images.size(0);
  count = std::clamp<std::int64_t>(count, 0, n);
  std::vector<bool> held(static_cast<std::size_t>(n), false);
  for (std::int64_t k = 0; k < count; ++k) held[static_cast<std::size_t>((2 * k + 1) * n / (2 * count))] = true;
  std::vector<std::int64_t> source, rest_rows;  // source[i]: the row that moves to row i
  for (std::int64_t row = 0; row < n; ++row) (held[static_cast<std::size_t>(row)] ? source : rest_rows).push_back(row);
  source.insert(source.end(), rest_rows.begin(), rest_rows.end());
  // The permutation applied cycle by cycle, one row held aside per cycle.
  std::vector<bool> placed(static_cast<std::size_t>(n), false);
  for (std::int64_t start = 0; start < n; ++start) {
    if (placed[static_cast<std::size_t>(start)] || source[static_cast<std::size_t>(start)] == start) continue;
    const torch::Tensor image = data.images[start].clone();
    const torch::Tensor label = data.labels[start].clone();
    std::int64_t to = start;
    for (std::int64_t from = source[static_cast<std::size_t>(to)]; from != start; from = source[static_cast<std::size_t>(to)]) {
      data.images[to].copy_(data.images[from]);
      data.labels[to].copy_(data.labels[from]);
      placed[static_cast<std::size_t>(to)] = true;
      to = from;
    }
    data.images[to].copy_(image);
    data.labels[to].copy_(label);
    placed[static_cast<std::size_t>(to)] = true;
  }
  HeldOutSplit split;
  split.all = data;
  split.held_out = {data.images.narrow(0, 0, count), data.labels.narrow(0, 0, count)};
  split.rest = {data.images.narrow(0, count, n - count), data.labels.narrow(0, count, n - count)};
  return split;
}

TrainingData raw_images(const Dataset& dataset, const std::vector<std::size_t>& items, int channels, int size) {
  const auto n = static_cast<std::int64_t>(items.size());
  TrainingData data{torch::empty({n, channels, size, size}), torch::empty({n}, torch::kInt64)};
  auto* pixels = data.images.data_ptr<float>();
  auto* labels = data.labels.data_ptr<std::int64_t>();
  const std::size_t per_image = static_cast<std::size_t>(channels) * size * size;
  for (std::size_t row = 0; row < items.size(); ++row) {
    const std::size_t i = items[row];
    auto image = dataset.load(i);
    if (!image) throw Error(image.status());
    if (image->pixels.size() != per_image) throw Error(invalid_argument(dataset.item_name(i) + ": not a " + std::to_string(size) + "x" + std::to_string(size) + " image of the model's channels"));
    for (std::size_t p = 0; p < per_image; ++p) pixels[row * per_image + p] = image->pixels[p] / 255.0f;
    labels[row] = dataset.label(i);
  }
  return data;
}

torch::Tensor model_input(const torch::Tensor& images) {
  if (images.scalar_type() == torch::kUInt8) return images.to(torch::kFloat32).div_(255.0);
  return images.to(torch::kFloat32);
}

void write_model_input(torch::Tensor row, const std::vector<float>& input) {
  row.copy_(torch::from_blob(const_cast<float*>(input.data()), row.sizes(), torch::kFloat32));
}

TeacherProbabilities teacher_of(torch::jit::Module& module, double temperature) {
  module.eval();
  return [&module, temperature](const torch::Tensor& images) { return torch::softmax(module.forward({images}).toTensor() / temperature, 1); };
}

torch::jit::Module trainable_copy(const torch::jit::Module& module) {
  torch::NoGradGuard no_grad;
  return module.clone();
}

torch::Tensor in_top_k(const torch::Tensor& logits, const torch::Tensor& labels, int k) {
  const auto best = std::get<1>(logits.topk(std::min<std::int64_t>(k, logits.size(1)), 1));
  return best.eq(labels.unsqueeze(1)).any(1);
}

TopAccuracy top_accuracy(torch::jit::Module& module, const torch::Tensor& images, const torch::Tensor& labels) {
  const bool was_training = module.is_training();
  module.eval();
  // Not InferenceMode: a module that was just trained may run its forward through the
  // profiling executor's differentiable plan, which refuses inference tensors.
  torch::NoGradGuard no_grad;
  std::int64_t top1 = 0, top5 = 0;
  const auto n = images.size(0);
  // Batches of ~4 M input values: 500 images of 28x28, 27 of 3x224x224 (500 photos at once
  // take several GB of a 224-pixel model's activations: a port was OOM-killed evaluating).
  const std::int64_t per_image = n > 0 ? std::max<std::int64_t>(1, images[0].numel()) : 1;
  const std::int64_t batch = std::clamp<std::int64_t>((std::int64_t{1} << 22) / per_image, 1, 500);
  for (std::int64_t start = 0; start < n; start += batch) {
    const auto end = std::min(n, start + batch);
    const torch::Tensor x = model_input(images.slice(0, start, end));
    const auto logits = module.forward({x}).toTensor();
    const auto y = labels.slice(0, start, end);
    top1 += in_top_k(logits, y, 1).sum().item<std::int64_t>();
    top5 += in_top_k(logits, y, 5).sum().item<std::int64_t>();
  }
  if (was_training) module.train();
  if (n == 0) return {};
  return {static_cast<double>(top1) / static_cast<double>(n), static_cast<double>(top5) / static_cast<double>(n)};
}

double top1_accuracy(torch::jit::Module& module, const TrainingData& data) {
  return top_accuracy(module, data.images, data.labels).top1;
}

}  // namespace edgefleet
