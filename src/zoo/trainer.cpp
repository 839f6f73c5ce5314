// Trains a zoo model on Fashion-MNIST: SGD + Nesterov, cosine learning rate, random
// crop and flip; resumable from a per-epoch checkpoint; writes the .pt and its card.
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/thread_count.h"
#include "model/torchscript_cost.h"
#include "edgefleet/sha256.h"
#include "edgefleet/zoo.h"
#include "zoo/module_builder.h"
#include "zoo/training.h"

namespace edgefleet {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct TensorData {
  torch::Tensor images;  // uint8 [N, 1, 28, 28]
  torch::Tensor labels;  // int64 [N]
};

TensorData to_tensors(const Dataset& dataset, std::size_t limit) {
  const std::size_t n = limit > 0 ? std::min(limit, dataset.size()) : dataset.size();
  TensorData data{torch::empty({static_cast<int64_t>(n), 1, 28, 28}, torch::kUInt8),
                  torch::empty({static_cast<int64_t>(n)}, torch::kInt64)};
  auto* pixels = data.images.data_ptr<std::uint8_t>();
  auto* labels = data.labels.data_ptr<int64_t>();
  for (std::size_t i = 0; i < n; ++i) {
    const Image image = dataset.load(i).value();
    std::copy(image.pixels.begin(), image.pixels.end(), pixels + i * 784);
    labels[i] = dataset.label(i);
  }
  return data;
}

// Random crop (after zero padding) and horizontal flip, per sample, from `generator`.
torch::Tensor augment(const torch::Tensor& batch, const TrainRecipe& recipe, at::Generator& generator) {
  const int64_t n = batch.size(0);
  torch::Tensor out = batch;
  if (recipe.pad_crop > 0) {
    const int p = recipe.pad_crop;
    auto padded = torch::constant_pad_nd(batch, {p, p, p, p}, 0.0);
    out = torch::empty_like(batch);
    auto offsets = at::randint(0, 2 * p + 1, {n, 2}, generator);
    auto* o = offsets.data_ptr<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      out[i].copy_(padded[i].narrow(1, o[2 * i], 28).narrow(2, o[2 * i + 1], 28));
    }
  }
  if (recipe.horizontal_flip) {
    auto flip = at::rand({n}, generator).lt(0.5);
    out = torch::where(flip.view({n, 1, 1, 1}), out.flip({3}), out);
  }
  return out;
}

void write_json_atomically(const json& j, const std::string& path) { write_file_atomically(j.dump(1), path); }

json recipe_json(const TrainRecipe& r, int epochs) {
  return {{"dataset", "fashion-mnist:train (60000 images)"},
          {"optimizer", "SGD, Nesterov momentum 0.9"},
          {"learning_rate", r.learning_rate},
          {"schedule", "cosine to 0, per iteration"},
          {"weight_decay", r.weight_decay},
          {"batch_size", r.batch_size},
          {"epochs", epochs},
          {"augmentation", "random crop (pad " + std::to_string(r.pad_crop) + ")" + (r.horizontal_flip ? " + horizontal flip" : "")},
          {"seed", r.seed},
          {"command", "edgefleet zoo train"}};
}

}  // namespace

Expected<ModelCard> train_zoo_model(const ZooEntry& entry, const TrainOptions& options) {
  return capture([&]() -> ModelCard {
    if (options.out_dir.empty()) throw Error(invalid_argument("train: no output folder given"));
    fs::create_directories(options.out_dir);
    torch::set_num_threads(resolve_thread_count(options.threads));
    const TrainRecipe& recipe = entry.recipe;
    const int epochs = options.epochs_override > 0 ? options.epochs_override : recipe.epochs;

    auto train_set = open_fashion_mnist(FashionMnistSplit::kTrain, options.fashion_mnist_dir).value();
    auto test_set = open_fashion_mnist(FashionMnistSplit::kTest, options.fashion_mnist_dir).value();
    const TensorData train = to_tensors(*train_set, options.train_limit);
    const TensorData test = to_tensors(*test_set, options.test_limit);

    torch::manual_seed(recipe.seed);
    const fs::path checkpoint = fs::path(options.out_dir) / (entry.name + ".checkpoint");
    const std::string model_file = (checkpoint / "model.pt").string();
    const std::string optimizer_file = (checkpoint / "optimizer.pt").string();
    const std::string state_file = (checkpoint / "state.json").string();

    torch::jit::Module module = build_module(entry.arch, recipe.seed);
    int start_epoch = 0;
    json history = json::array();
    if (fs::exists(state_file)) {
      std::ifstream in(state_file);
      json state = json::parse(in, nullptr, false);
      // Resume only a checkpoint of this very architecture and recipe.
      if (!state.is_discarded() && state.value("epochs", 0) == epochs && state.value("arch", json()) == json(entry.arch) &&
          state.value("seed", std::uint64_t{0}) == recipe.seed) {
        module = torch::jit::load(model_file);
        for (auto p : module.parameters()) p.set_requires_grad(true);
        start_epoch = state.value("epoch", 0);
        history = state.value("history", json::array());
      }
    }
    module.train();
    std::vector<torch::Tensor> parameters;
    for (const auto& p : module.parameters()) parameters.push_back(p);
    const int64_t n = train.images.size(0);
    const int64_t steps_per_epoch = (n + recipe.batch_size - 1) / recipe.batch_size;
    CosineOptimizer optimizer(parameters, recipe.learning_rate, recipe.weight_decay, steps_per_epoch * epochs);
    if (start_epoch > 0 && fs::exists(optimizer_file)) torch::load(optimizer.optimizer(), optimizer_file);

    for (int epoch = start_epoch; epoch < epochs; ++epoch) {
      const auto started = std::chrono::steady_clock::now();
      // One generator per epoch: a resumed run draws exactly what an uninterrupted one would.
      auto generator = at::make_generator<at::CPUGeneratorImpl>(recipe.seed * 1000003 + epoch);
      auto order = at::randperm(n, generator);
      double loss_sum = 0.0;
      for (int64_t step = 0; step < steps_per_epoch; ++step) {
        auto index = order.slice(0, step * recipe.batch_size, std::min(n, (step + 1) * recipe.batch_size));
        auto x = augment(model_input(train.images.index_select(0, index)), recipe, generator);
        auto y = train.labels.index_select(0, index);
        const auto loss = optimizer.step(epoch * steps_per_epoch + step,
                                         [&] { return torch::nn::functional::cross_entropy(module.forward({x}).toTensor(), y); });
        loss_sum += loss.item<double>();
      }
      const auto [top1, top5] = top_accuracy(module, test.images, test.labels);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      TrainProgress progress{entry.name, epoch + 1, epochs, loss_sum / steps_per_epoch, top1, seconds};
      history.push_back({{"epoch", epoch + 1}, {"train_loss", progress.train_loss}, {"test_top1", top1}, {"seconds", seconds}});
      fs::create_directories(checkpoint);
      replace_atomically(model_file, [&](const std::string& tmp) { module.save(tmp); });
      replace_atomically(optimizer_file, [&](const std::string& tmp) { torch::save(optimizer.optimizer(), tmp); });
      write_json_atomically(
          {{"epoch", epoch + 1}, {"epochs", epochs}, {"arch", entry.arch}, {"seed", recipe.seed}, {"history", history}},
          state_file);
      if (options.on_epoch) options.on_epoch(progress);
    }

    module.eval();
    const std::string pt_path = (fs::path(options.out_dir) / (entry.name + ".pt")).string();
    replace_atomically(pt_path, [&](const std::string& tmp) { module.save(tmp); });

    ModelCard card;
    card.name = entry.name;
    card.task = "fashion-mnist";
    card.file = entry.name + ".pt";
    card.format = ModelFormat::kTorchScript;
    card.sha256 = sha256_file(pt_path).value();
    card.architecture = entry.description;
    card.architecture_spec = json(entry.arch);
    card.input.color = InputColor::kGray;
    card.input.height = card.input.width = entry.arch.input_size;
    card.input.resize = ResizeRule::kExact;
    card.input.resize_size = entry.arch.input_size;
    card.input.interpolation = Interpolation::kArea;
    card.input.normalization_inside_model =
        "(x - " + std::to_string(entry.arch.mean) + ") / " + std::to_string(entry.arch.std) + " on gray x in [0,1]";
    card.classes = entry.arch.classes;
    card.labels = test_set->classes().names;
    const ModelCost cost = torchscript_cost(module, {1, entry.arch.in_channels, entry.arch.input_size, entry.arch.input_size}).value();
    card.params = cost.params;
    card.macs = cost.macs;
    const auto [top1, top5] = top_accuracy(module, test.images, test.labels);
    card.accuracy = AccuracyRecord{test_set->name(), static_cast<std::size_t>(test.images.size(0)), top1, top5};
    card.training = recipe_json(recipe, epochs);
    card.training["history"] = history;
    card.training["threads"] = torch::get_num_threads();
    card.provenance = {{"trained_by", "edgefleet zoo train"}, {"libtorch", TORCH_VERSION}};
    const std::string card_path = (fs::path(options.out_dir) / (entry.name + ".json")).string();
    card.card_path = fs::absolute(card_path).string();
    const Status written = write_card(card, card_path);
    if (!written.is_ok()) throw Error(written);
    fs::remove_all(checkpoint);
    return card;
  });
}

}  // namespace edgefleet
