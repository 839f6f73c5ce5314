// Stability training: data splits and caches, the fine-tuning loop with each noise source
// and stability loss, validation, the grid search and the held-out evaluation.
#include "edgefleet/hardening.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>

#include "core/atomic_file.h"
#include "core/thread_count.h"
#include "edgefleet/distortion.h"
#include "edgefleet/instability.h"
#include "edgefleet/preprocess.h"
#include "edgefleet/sha256.h"
#include "zoo/training.h"

namespace edgefleet {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

void say(const HardenOptions& options, const std::string& line) {
  if (options.log) options.log(line);
}

std::uint64_t mix(std::uint64_t x) {  // splitmix64: per-sample seeds independent of batching
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::vector<std::size_t> spread(std::size_t begin, std::size_t end, std::size_t count) {
  const std::size_t size = end - begin;
  count = std::min(count, size);
  std::vector<std::size_t> out;
  for (std::size_t k = 0; k < count; ++k) out.push_back(begin + k * size / count);
  return out;
}

// One split as tensors: the card's own preprocessing (`clean`), every training environment's
// pipeline (`devices`; an input an environment fails on keeps its clean tensor there), and the
// model-size 8-bit pictures distortion noise starts from. `storage` is the tensors' type:
// the training split is kept in fp16 (1,600 photos through 3 phones are 3.9 GB in fp32; an
// fp16 step, 1/2048 of a value, is a twentieth of one 8-bit pixel step after normalisation),
// validation and test in fp32, as the model sees them.
struct SplitTensors {
  std::vector<std::size_t> indices;  // into the dataset; unreadable items left out
  torch::Tensor clean;               // [N, C, H, W] of `storage`
  torch::Tensor labels;              // int64 [N]
  torch::Tensor devices;             // [D, N, C, H, W] of `storage`
  torch::Tensor teacher_log_p;       // float [N, classes]: the base model's on `clean` (distillation only)
  std::vector<Image> geometry;
  std::size_t device_failures = 0;
};

Expected<SplitTensors> load_split(const Dataset& data, const std::vector<std::size_t>& wanted, const InputContract& contract,
                                  const std::vector<StabilityEnvironment>& environments, bool keep_geometry,
                                  torch::ScalarType storage, const std::string& cache_dir, const HardenOptions& options) {
  SplitTensors split;
  // Written row by row as each photo is read: no second copy of the split.
  split.clean = torch::empty({static_cast<int64_t>(wanted.size()), contract.channels(), contract.height, contract.width}, storage);
  std::vector<int64_t> labels;
  for (std::size_t i : wanted) {
    auto image = data.load(i);
    if (!image) {
      say(options, "skipped " + image.status().to_string());
      continue;
    }
    auto tensor = preprocess(*image, contract);
    if (!tensor) return tensor.status();
    if (keep_geometry) {
      auto geometry = preprocess_geometry(*image, contract);
      if (!geometry) return geometry.status();
      split.geometry.push_back(std::move(*geometry));
    }
    write_model_input(split.clean[static_cast<int64_t>(split.indices.size())], *tensor);
    split.indices.push_back(i);
    labels.push_back(data.label(i));
  }
  if (split.indices.empty()) return invalid_argument("no item of '" + data.name() + "' could be read");
  const auto n = static_cast<int64_t>(split.indices.size());
  if (n < split.clean.size(0)) split.clean = split.clean.narrow(0, 0, n).clone();
  split.labels = torch::tensor(labels, torch::kInt64);
  if (environments.empty()) {
    split.devices = torch::empty({0, n, contract.channels(), contract.height, contract.width}, storage);
    return split;
  }
  // The pipelines are the slow part (cameras on full photos): cached per split and environments.
  std::string key = data.name() + ";" + std::to_string(data.size()) + ";" + input_color_name(contract.color) + ";" +
                    std::to_string(contract.height) + "x" + std::to_string(contract.width);
  for (std::size_t i : split.indices) key += "," + std::to_string(i);
  for (const auto& e : environments) key += ";" + environment_spec(e);
  const std::string cache = (fs::path(cache_dir) / ("pipelines-" + sha256_hex(key.data(), key.size()).substr(0, 16) + ".pt")).string();
  if (fs::exists(cache)) {
    std::vector<torch::Tensor> saved;
    torch::load(saved, cache);
    split.devices = saved.at(0).to(storage);
    split.device_failures = static_cast<std::size_t>(saved.at(1).item<int64_t>());
    return split;
  }
  say(options, "running " + std::to_string(environments.size()) + " environments' pipelines on " +
                   std::to_string(split.indices.size()) + " inputs of " + data.name());
  split.devices = torch::empty({static_cast<int64_t>(environments.size()), n, contract.channels(), contract.height, contract.width}, storage);
  // In chunks: every environment's fp32 inputs of a whole split at once would double the peak.
  constexpr std::size_t kChunk = 256;
  for (std::size_t first = 0; first < split.indices.size(); first += kChunk) {
    const std::vector<std::size_t> chunk(split.indices.begin() + static_cast<std::ptrdiff_t>(first),
                                         split.indices.begin() + static_cast<std::ptrdiff_t>(std::min(first + kChunk, split.indices.size())));
    auto inputs = environment_inputs(contract, data, chunk, environments, options.threads);
    if (!inputs) return inputs.status();
    for (std::size_t k = 0; k < chunk.size(); ++k) {
      const auto row = static_cast<int64_t>(first + k);
      for (std::size_t e = 0; e < environments.size(); ++e) {
        const auto& t = inputs->tensors[k][e];
        auto destination = split.devices[static_cast<int64_t>(e)][row];
        if (t.empty()) {
          ++split.device_failures;
          destination.copy_(split.clean[row]);
        } else {
          write_model_input(destination, t);
        }
      }
    }
  }
  fs::create_directories(cache_dir);
  std::vector<torch::Tensor> to_save{split.devices, torch::tensor(static_cast<int64_t>(split.device_failures))};
  replace_atomically(cache, [&](const std::string& tmp) { torch::save(to_save, tmp); });
  return split;
}

// The model being fine-tuned. With the embedding loss it needs features(x) and a last
// linear layer fc_w/fc_b (zoo models have both); other models get an identity-initialised
// dense layer after their logits, as the paper adds one, so the embedding is their logits.
struct TrainableModel {
  torch::jit::Module module;
  bool added_head = false;
};

bool has_embedding(const torch::jit::Module& m) {
  return m.find_method("features").has_value() && m.hasattr("fc_w") && m.hasattr("fc_b");
}

TrainableModel load_trainable(const ModelCard& card, bool needs_embedding) {
  TrainableModel model{torch::jit::load(card.model_path())};
  if (needs_embedding && !has_embedding(model.module)) {
    torch::jit::Module wrapped("edgefleet_hardened");
    wrapped.register_module("base", model.module);
    wrapped.register_parameter("fc_w", torch::eye(card.classes), false);
    wrapped.register_parameter("fc_b", torch::zeros({card.classes}), false);
    wrapped.define(R"(
def features(self, x):
    return self.base.forward(x)

def forward(self, x):
    return torch.linear(self.features(x), self.fc_w, self.fc_b)
)");
    model.module = wrapped;
    model.added_head = true;
  }
  return model;
}

std::pair<torch::Tensor, torch::Tensor> logits_and_embedding(torch::jit::Module& m, const torch::Tensor& x, bool embedding) {
  if (!embedding) return {m.forward({x}).toTensor(), torch::Tensor()};
  auto f = m.get_method("features")({x}).toTensor();
  return {torch::linear(f, m.attr("fc_w").toTensor(), m.attr("fc_b").toTensor()), f};
}

// Runs `fn` with every buffer of `m` swapped for a copy, so that what it writes there (batch-norm
// running statistics) is dropped; the originals, which autograd may hold, are never written.
template <typename Fn>
auto with_scratch_buffers(torch::jit::Module& m, Fn&& fn) {
  std::vector<std::tuple<torch::jit::Module, std::string, torch::Tensor>> originals;
  for (auto module : m.modules()) {
    for (const auto& buffer : module.named_buffers(/*recurse=*/false)) {
      originals.emplace_back(module, buffer.name, buffer.value);
      module.setattr(buffer.name, buffer.value.clone());
    }
  }
  auto result = fn();
  for (auto& [module, name, value] : originals) module.setattr(name, value);
  return result;
}

// Pixel noise sigma (pixels in [0, 1]) in model-input units, per channel.
torch::Tensor input_scale(const InputContract& c) {
  auto scale = torch::full({1, c.channels(), 1, 1}, c.range_max - c.range_min);
  for (int ch = 0; ch < c.channels() && ch < static_cast<int>(c.std.size()); ++ch) scale[0][ch] /= c.std[ch];
  return scale;
}

// KL(target || softmax(logits)), averaged over the batch; `target_log_p` carries no gradient.
torch::Tensor kl_from(const torch::Tensor& target_log_p, const torch::Tensor& logits) {
  return (target_log_p.exp() * (target_log_p - torch::log_softmax(logits, 1))).sum(1).mean();
}

struct TrainOutcome {
  double seconds = 0;
  double final_loss = 0;
};

TrainOutcome fine_tune(TrainableModel& model, const HardenSetting& s, const SplitTensors& train, const InputContract& contract,
                       const FineTuneBudget& budget) {
  const auto started = std::chrono::steady_clock::now();
  torch::manual_seed(budget.seed);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(budget.seed);
  torch::jit::Module& m = model.module;
  std::vector<torch::Tensor> parameters;
  for (auto p : m.parameters()) {
    p.set_requires_grad(true);
    parameters.push_back(p);
  }
  m.train(!budget.frozen_batch_norm);
  const bool embedding = s.loss == StabilityLoss::kEmbedding;
  const int64_t n = train.clean.size(0);
  const int64_t devices = train.devices.size(0);
  const torch::Tensor scale = input_scale(contract) * std::sqrt(s.sigma2);

  // Subsample: per device and class, the only `per_class` pictures x' may come from.
  std::vector<std::vector<std::vector<int64_t>>> pools;
  if (s.noise == NoiseKind::kSubsample) {
    std::mt19937_64 random(mix(budget.seed));
    pools.assign(devices, {});
    const auto* labels = train.labels.data_ptr<int64_t>();
    const int64_t classes = train.labels.max().item<int64_t>() + 1;
    for (int64_t d = 0; d < devices; ++d) {
      std::vector<int64_t> order(n);
      std::iota(order.begin(), order.end(), 0);
      std::shuffle(order.begin(), order.end(), random);
      pools[d].assign(classes, {});
      for (int64_t i : order) {
        auto& pool = pools[d][labels[i]];
        if (static_cast<int>(pool.size()) < s.per_class) pool.push_back(i);
      }
    }
  }

  const int64_t steps_per_epoch = (n + budget.batch_size - 1) / budget.batch_size;
  CosineOptimizer optimizer(parameters, budget.learning_rate, 0.0, steps_per_epoch * budget.epochs, budget.optimizer);
  TrainOutcome outcome;
  for (int epoch = 0; epoch < budget.epochs; ++epoch) {
    auto order = at::randperm(n, generator);
    double loss_sum = 0;
    for (int64_t step = 0; step < steps_per_epoch; ++step) {
      auto index = order.slice(0, step * budget.batch_size, std::min(n, (step + 1) * budget.batch_size));
      const int64_t b = index.size(0);
      auto x = model_input(train.clean.index_select(0, index));
      auto y = train.labels.index_select(0, index);
      torch::Tensor noisy;
      switch (s.noise) {
        case NoiseKind::kNone:
          break;
        case NoiseKind::kGaussian:
          noisy = x + at::randn(x.sizes(), generator) * scale;
          break;
        case NoiseKind::kDistortion: {
          noisy = torch::empty_like(x);
          const auto* ids = index.data_ptr<int64_t>();
          for (int64_t j = 0; j < b; ++j) {
            const std::uint64_t seed = mix(mix(budget.seed * 1000003 + epoch) ^ static_cast<std::uint64_t>(ids[j]));
            auto image = apply_distortion(train.geometry[ids[j]], draw_distortion(s.strength, seed)).value();
            auto input = to_model_input(image, contract).value();
            std::copy(input.begin(), input.end(), noisy[j].data_ptr<float>());
          }
          break;
        }
        case NoiseKind::kPaired:
          noisy = model_input(train.devices.index({at::randint(0, devices, {b}, generator), index}));
          break;
        case NoiseKind::kSubsample: {
          auto device = at::randint(0, devices, {b}, generator);
          auto draw = at::randint(0, s.per_class, {b}, generator);
          auto partner = torch::empty({b}, torch::kInt64);
          const auto* labels = y.data_ptr<int64_t>();
          for (int64_t j = 0; j < b; ++j) {
            const auto& pool = pools[device[j].item<int64_t>()][labels[j]];
            partner[j] = pool.empty() ? index[j].item<int64_t>() : pool[draw[j].item<int64_t>() % pool.size()];
          }
          noisy = model_input(train.devices.index({device, partner}));
          break;
        }
        case NoiseKind::kMixed: {
          // Each sample through one of the training pipelines or the card's own (index D).
          auto device = at::randint(0, devices + 1, {b}, generator);
          auto through = model_input(train.devices.index({device.clamp_max(devices - 1), index}));
          x = torch::where(device.eq(devices).view({b, 1, 1, 1}), x, through);
          break;
        }
      }
      const auto loss = optimizer.step(epoch * steps_per_epoch + step, [&] {
        auto [logits, features] = logits_and_embedding(m, x, embedding);
        auto loss = budget.distill ? kl_from(train.teacher_log_p.index_select(0, index), logits)
                                   : torch::nn::functional::cross_entropy(logits, y);
        if (noisy.defined()) {
          // Batch-norm running statistics follow the clean inputs only: the noisy pass must not
          // move them (Gaussian noise would shift what every later clean inference sees).
          auto [noisy_logits, noisy_features] =
              with_scratch_buffers(m, [&] { return logits_and_embedding(m, noisy, embedding); });
          // The clean side is the target (no gradient through it): the noisy answer is pulled to
          // the clean one, not both towards each other, which keeps clean accuracy.
          torch::Tensor stability;
          if (embedding) {
            stability = (features.detach() - noisy_features).pow(2).sum(1).mean();
          } else {
            stability = kl_from(torch::log_softmax(logits, 1).detach(), noisy_logits);
          }
          loss = loss + s.alpha * stability;
        }
        return loss;
      });
      loss_sum += loss.item<double>();
    }
    outcome.final_loss = loss_sum / steps_per_epoch;
  }
  m.eval();
  for (auto p : m.parameters()) p.set_requires_grad(false);
  outcome.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return outcome;
}

Prediction prediction_of(const torch::Tensor& probabilities_row, int k) {
  auto [values, classes] = probabilities_row.topk(std::min<int64_t>(k, probabilities_row.size(0)));
  Prediction p;
  for (int64_t j = 0; j < values.size(0); ++j) {
    p.classes.push_back(static_cast<int>(classes[j].item<int64_t>()));
    p.probabilities.push_back(values[j].item<float>());
  }
  return p;
}

// The model's log-probabilities on `inputs`, in eval mode, in batches.
torch::Tensor log_probabilities(torch::jit::Module& m, const torch::Tensor& inputs) {
  torch::NoGradGuard no_grad;
  m.eval();
  std::vector<torch::Tensor> parts;
  for (int64_t start = 0; start < inputs.size(0); start += 256) {
    const auto batch = model_input(inputs.slice(0, start, std::min(inputs.size(0), start + 256)));
    parts.push_back(torch::log_softmax(m.forward({batch}).toTensor(), 1));
  }
  return torch::cat(parts);
}

// Validation: clean top-1 and top-1 instability across the card's own preprocessing and the
// training environments, in fp32.
std::pair<double, double> validate(torch::jit::Module& m, const SplitTensors& val) {
  torch::NoGradGuard no_grad;
  m.eval();
  PredictionTable table;
  const int64_t n = val.clean.size(0);
  table.labels.assign(val.labels.data_ptr<int64_t>(), val.labels.data_ptr<int64_t>() + n);
  table.predictions.assign(n, {});
  std::vector<torch::Tensor> sources{val.clean};
  for (int64_t d = 0; d < val.devices.size(0); ++d) sources.push_back(val.devices[d]);
  for (std::size_t e = 0; e < sources.size(); ++e) {
    table.environments.push_back(e == 0 ? "reference" : "device " + std::to_string(e));
    for (int64_t start = 0; start < n; start += 256) {
      auto probabilities = torch::softmax(m.forward({sources[e].slice(0, start, std::min(n, start + 256))}).toTensor(), 1);
      for (int64_t j = 0; j < probabilities.size(0); ++j) table.predictions[start + j].push_back(prediction_of(probabilities[j], 3));
    }
  }
  const InstabilityReport report = measure_instability(table).value();
  return {report.accuracy[0], report.instability};
}

// The test split: clean inputs and every held-out environment's.
struct TestSet {
  SplitTensors split;                 // devices = held-out environments
  std::vector<float> calibration;     // INT8 calibration: validation inputs, never tested on
};

double top_k_accuracy(const torch::Tensor& logits, const torch::Tensor& labels, int k) {
  return in_top_k(logits, labels, k).to(torch::kFloat64).mean().item<double>();
}

Expected<torch::Tensor> classify(Classifier& classifier, const torch::Tensor& inputs) {
  const int64_t n = inputs.size(0);
  std::vector<torch::Tensor> parts;
  for (int64_t start = 0; start < n; start += 64) {
    auto batch = inputs.slice(0, start, std::min(n, start + 64)).contiguous();
    auto logits = classifier.infer(batch.data_ptr<float>(), static_cast<int>(batch.size(0)));
    if (!logits) return logits.status();
    parts.push_back(torch::from_blob(logits->data(), {batch.size(0), static_cast<int64_t>(logits->size()) / batch.size(0)},
                                     torch::kFloat32).clone());
  }
  return torch::cat(parts);
}

Expected<ModelEvaluation> evaluate(const ModelCard& card, const TestSet& test,
                                   const std::vector<StabilityEnvironment>& heldout, int threads) {
  ModelEvaluation out;
  LoadOptions load;
  load.threads = threads;
  auto reference = load_classifier(card, load);
  if (!reference) return reference.status();
  auto clean = classify(**reference, test.split.clean);
  if (!clean) return clean.status();
  out.top1 = top_k_accuracy(*clean, test.split.labels, 1);
  out.top3 = top_k_accuracy(*clean, test.split.labels, 3);
  out.top5 = top_k_accuracy(*clean, test.split.labels, 5);

  auto classifiers = load_setting_classifiers(card, heldout, test.calibration, threads);
  if (!classifiers) return classifiers.status();
  PredictionTable table;
  const int64_t n = test.split.clean.size(0);
  table.labels.assign(test.split.labels.data_ptr<int64_t>(), test.split.labels.data_ptr<int64_t>() + n);
  table.predictions.assign(n, {});
  for (std::size_t e = 0; e < heldout.size(); ++e) {
    table.environments.push_back(heldout[e].name);
    auto logits = classify(classifier_for(*classifiers, heldout[e].environment.inference, threads), test.split.devices[static_cast<int64_t>(e)]);
    if (!logits) return logits.status();
    auto probabilities = torch::softmax(*logits, 1);
    for (int64_t j = 0; j < n; ++j) table.predictions[j].push_back(prediction_of(probabilities[j], 3));
  }
  auto report = measure_instability(table);
  if (!report) return report.status();
  out.heldout_instability = report->instability;
  out.heldout_instability_top3 = report->instability_top_k;
  out.heldout_disagreement = report->disagreement;
  out.heldout_top1 = report->accuracy;
  for (double a : report->accuracy) out.heldout_mean_top1 += a / report->accuracy.size();
  return out;
}

json setting_json(const HardenSetting& s) {
  return {{"noise", noise_kind_name(s.noise)}, {"loss", stability_loss_name(s.loss)}, {"alpha", s.alpha},
          {"sigma2", s.sigma2}, {"strength", s.strength}, {"per_class", s.per_class},
          {"setting", harden_setting_to_string(s)}};
}

std::string file_stem(const HardenSetting& s, std::size_t index) {
  std::string out = std::to_string(index) + "-" + harden_setting_to_string(s);
  for (char& c : out) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') c = '_';
  }
  return out;
}

// Writes a card for a model file fine-tuned from `base` (same contract and labels).
ModelCard derived_card(const ModelCard& base, const std::string& pt_path, const std::string& name, bool added_head) {
  ModelCard card = base;
  card.name = name;
  card.file = fs::path(pt_path).filename().string();
  card.format = ModelFormat::kTorchScript;
  card.sha256 = sha256_file(pt_path).value();
  card.card_path = fs::absolute(fs::path(pt_path).replace_extension(".json")).string();
  if (added_head) {
    card.architecture += " + identity-initialised dense layer after the logits (embedding stability loss)";
    card.params += static_cast<std::int64_t>(base.classes) * base.classes + base.classes;
    card.macs += static_cast<std::int64_t>(base.classes) * base.classes;
  }
  const Status written = write_card(card, card.card_path);
  if (!written.is_ok()) throw Error(written);
  return card;
}

void write_json_atomically(const json& j, const std::string& path) { write_file_atomically(j.dump(1), path); }

}  // namespace

Expected<HardenData> hardening_splits(const std::string& data_spec, const std::string& test_spec) {
  auto official = open_official_splits(data_spec);
  if (!official) return official.status();
  if (*official && !test_spec.empty()) {
    return invalid_argument("'" + data_spec + "' has its own test split: a separate test folder applies to image folders");
  }
  if (*official) {
    // Validation: the last 1000 training images.
    const auto& train = (*official)->train;
    const std::size_t n = train->size();
    if (n < 2000) return invalid_argument(train->name() + " has only " + std::to_string(n) + " images");
    std::vector<std::size_t> fit(n - 1000);
    std::iota(fit.begin(), fit.end(), 0);
    return HardenData{subset(train, std::move(fit)), subset(train, items_after(n - 1000, n)), (*official)->test};
  }
  auto all = open_dataset(data_spec);
  if (!all) return all.status();
  if (!test_spec.empty()) {
    auto test = open_dataset(test_spec);
    if (!test) return test.status();
    auto parts = split_items((*all)->size(), SplitPolicy::kTwoOneTwo);
    std::vector<std::size_t> train_items = std::move(parts[0]);
    train_items.insert(train_items.end(), parts[2].begin(), parts[2].end());
    std::sort(train_items.begin(), train_items.end());
    if (parts[1].empty() || (*test)->size() == 0) {
      return invalid_argument("'" + data_spec + "' or '" + test_spec + "' has too few items to train, validate and test on");
    }
    return HardenData{subset(*all, std::move(train_items)), subset(*all, std::move(parts[1])), *test};
  }
  auto parts = split_items((*all)->size(), SplitPolicy::kTwoOneTwo);
  if (parts[1].empty() || parts[2].empty()) {
    return invalid_argument("'" + data_spec + "' has " + std::to_string((*all)->size()) + " items: too few to split");
  }
  return HardenData{subset(*all, std::move(parts[2])), subset(*all, std::move(parts[1])), subset(*all, std::move(parts[0]))};
}

Expected<HardenResult> harden_model(const ModelCard& base, const HardenData& data, const HardenOptions& options) {
  return capture([&]() -> HardenResult {
    if (!data.train || !data.validation || !data.test || data.train->size() == 0 || data.validation->size() == 0 ||
        data.test->size() == 0) {
      throw Error(invalid_argument("hardening needs non-empty training, validation and test splits"));
    }
    const Dataset& train_data = *data.train;
    const Dataset& test_data = *data.test;
    auto settings = grid_settings(options.grid);
    if (!settings) throw Error(settings.status());
    if (options.train_environments.empty()) {
      throw Error(invalid_argument("hardening needs at least one training environment (noise source and validation)"));
    }
    if (options.heldout_environments.size() < 2) {
      throw Error(invalid_argument("hardening needs at least two held-out environments to measure instability on"));
    }
    for (const auto& t : options.train_environments) {
      for (const auto& h : options.heldout_environments) {
        if (t.name == h.name) throw Error(invalid_argument("environment '" + t.name + "' is both trained on and held out"));
      }
    }
    if (options.work_dir.empty() || options.out_model.empty()) {
      throw Error(invalid_argument("hardening needs a work folder and an output model path"));
    }
    const FineTuneBudget& budget = options.budget;
    if (budget.epochs < 1 || budget.batch_size < 1 || !(budget.learning_rate > 0) || budget.train_images < 1) {
      throw Error(invalid_argument("fine-tuning needs epochs, batch size, learning rate and training images > 0"));
    }
    if (options.validation_images < 1 || options.test_images < 1) {
      throw Error(invalid_argument("hardening needs validation and test images"));
    }
    if (base.format != ModelFormat::kTorchScript) {
      throw Error(unsupported("hardening fine-tunes TorchScript models; '" + base.name + "' is " + model_format_name(base.format)));
    }
    torch::set_num_threads(resolve_thread_count(options.threads));
    fs::create_directories(fs::path(options.work_dir) / "candidates");
    const std::string cache_dir = (fs::path(options.work_dir) / "cache").string();

    HardenResult result;
    result.base_model = base.name;
    for (const auto& e : options.train_environments) result.train_environments.push_back(e.name);
    // Held-out OpenCV DNN settings run on libtorch: fine-tuned models have no ONNX copy.
    std::vector<StabilityEnvironment> heldout = options.heldout_environments;
    for (auto& e : heldout) {
      result.heldout_environments.push_back(e.name);
      if (e.environment.inference.engine == Engine::kOpencvDnn) {
        e.environment.inference.engine = Engine::kLibtorch;
        result.notes.push_back(e.name + ": engine opencv-dnn run as libtorch for every model (a fine-tuned model has no ONNX copy)");
      }
    }

    const bool distortion = std::any_of(settings->begin(), settings->end(),
                                        [](const HardenSetting& s) { return s.noise == NoiseKind::kDistortion; });
    say(options, "preparing training data");
    SplitTensors train = load_split(train_data, spread(0, train_data.size(), budget.train_images), base.input,
                                    options.train_environments, distortion, torch::kHalf, cache_dir, options).value();
    SplitTensors validation = load_split(*data.validation, spread(0, data.validation->size(), options.validation_images),
                                         base.input, options.train_environments, false, torch::kFloat32, cache_dir, options).value();
    TestSet test{load_split(test_data, spread(0, test_data.size(), options.test_images), base.input, heldout, false,
                            torch::kFloat32, cache_dir, options).value(), {}};
    const int64_t calibration_count = std::min<int64_t>(200, validation.clean.size(0));
    auto calibration = validation.clean.slice(0, 0, calibration_count).contiguous();
    test.calibration.assign(calibration.data_ptr<float>(), calibration.data_ptr<float>() + calibration.numel());
    if (train.device_failures + validation.device_failures + test.split.device_failures > 0) {
      result.notes.push_back(std::to_string(train.device_failures + validation.device_failures + test.split.device_failures) +
                             " (input, environment) pipeline failures: those inputs keep the clean picture there");
    }

    say(options, "measuring the base model");
    {
      TrainableModel model = load_trainable(base, false);
      std::tie(result.base_validation_top1, result.base_validation_instability) = validate(model.module, validation);
      if (budget.distill) train.teacher_log_p = log_probabilities(model.module, train.clean);
    }
    result.before = evaluate(base, test, heldout, options.threads).value();

    // Finished candidates of an earlier run with the same inputs are kept.
    std::string fingerprint = "stability loss v3 (clean side detached, batch-norm statistics from clean inputs); training inputs fp16; base " + base.sha256 + "; train " + train_data.name() + " " + std::to_string(train.indices.size()) +
                              "; validation " + std::to_string(validation.indices.size()) + "; epochs " +
                              std::to_string(budget.epochs) + " batch " + std::to_string(budget.batch_size) + " lr " +
                              std::to_string(budget.learning_rate) + " seed " + std::to_string(budget.seed) +
                              (budget.frozen_batch_norm ? " frozen batch norm" : "") +
                              (budget.distill ? " distilled from the base" : "") +
                              (budget.optimizer == FinetuneOptimizer::kAdamW ? " adamw" : "");
    for (const auto& e : options.train_environments) fingerprint += "; " + environment_spec(e);
    const std::string state_path = (fs::path(options.work_dir) / "grid.json").string();
    json state{{"fingerprint", fingerprint}, {"candidates", json::object()}};
    if (fs::exists(state_path)) {
      std::ifstream in(state_path);
      json saved = json::parse(in, nullptr, false);
      if (!saved.is_discarded() && saved.value("fingerprint", "") == fingerprint) state = saved;
    }

    for (std::size_t c = 0; c < settings->size(); ++c) {
      const HardenSetting& s = (*settings)[c];
      const std::string key = harden_setting_to_string(s);
      CandidateResult candidate;
      candidate.setting = s;
      const json* saved = state["candidates"].contains(key) ? &state["candidates"][key] : nullptr;
      if (saved && fs::exists(saved->value("model_file", ""))) {
        candidate.validation_top1 = saved->value("validation_top1", 0.0);
        candidate.validation_instability = saved->value("validation_instability", 0.0);
        candidate.train_seconds = saved->value("train_seconds", 0.0);
        candidate.model_file = saved->value("model_file", "");
        candidate.resumed = true;
      } else {
        TrainableModel model = load_trainable(base, s.loss == StabilityLoss::kEmbedding);
        const TrainOutcome trained = fine_tune(model, s, train, base.input, budget);
        candidate.train_seconds = trained.seconds;
        std::tie(candidate.validation_top1, candidate.validation_instability) = validate(model.module, validation);
        const std::string pt = fs::absolute(fs::path(options.work_dir) / "candidates" / (file_stem(s, c) + ".pt")).string();
        replace_atomically(pt, [&](const std::string& tmp) { model.module.save(tmp); });
        derived_card(base, pt, base.name + "-" + file_stem(s, c), model.added_head);
        candidate.model_file = pt;
        state["candidates"][key] = {{"validation_top1", candidate.validation_top1},
                                    {"validation_instability", candidate.validation_instability},
                                    {"train_seconds", candidate.train_seconds},
                                    {"final_loss", trained.final_loss},
                                    {"model_file", pt}};
        write_json_atomically(state, state_path);
      }
      char line[200];
      std::snprintf(line, sizeof line, "[%zu/%zu] %-48s validation top-1 %.2f%%, instability %.2f%%%s", c + 1,
                    settings->size(), key.c_str(), 100 * candidate.validation_top1, 100 * candidate.validation_instability,
                    candidate.resumed ? " (from the work folder)" : "");
      say(options, line);
      result.candidates.push_back(std::move(candidate));
    }

    // Rows of the table: per noise x loss, the best alpha (and noise parameter) on validation;
    // the chosen setting: the best of all. Best = within the allowed accuracy drop, then the
    // lowest validation instability.
    auto better = [&](int a, int b) {
      const bool a_ok = result.candidates[a].validation_top1 >= result.base_validation_top1 - options.max_accuracy_drop;
      const bool b_ok = result.candidates[b].validation_top1 >= result.base_validation_top1 - options.max_accuracy_drop;
      if (a_ok != b_ok) return a_ok;
      return result.candidates[a].validation_instability < result.candidates[b].validation_instability;
    };
    std::vector<std::pair<NoiseKind, StabilityLoss>> rows;
    result.chosen = 0;
    for (std::size_t c = 0; c < result.candidates.size(); ++c) {
      const HardenSetting& s = result.candidates[c].setting;
      auto row = std::find(rows.begin(), rows.end(), std::make_pair(s.noise, s.loss));
      if (row == rows.end()) {
        rows.emplace_back(s.noise, s.loss);
        result.table_rows.push_back(static_cast<int>(c));
      } else if (better(static_cast<int>(c), result.table_rows[row - rows.begin()])) {
        result.table_rows[row - rows.begin()] = static_cast<int>(c);
      }
      if (better(static_cast<int>(c), result.chosen)) result.chosen = static_cast<int>(c);
    }
    for (int c : result.table_rows) {
      auto& candidate = result.candidates[c];
      say(options, "evaluating " + harden_setting_to_string(candidate.setting) + " on the held-out environments");
      auto card = read_card(fs::path(candidate.model_file).replace_extension(".json").string()).value();
      candidate.test = evaluate(card, test, heldout, options.threads).value();
      candidate.evaluated = true;
    }

    // The hardened model: the chosen candidate, copied to the output with its own card.
    const CandidateResult& chosen = result.candidates[result.chosen];
    fs::path out_pt = fs::absolute(options.out_model);
    if (out_pt.extension() != ".pt") out_pt += ".pt";
    if (!out_pt.parent_path().empty()) fs::create_directories(out_pt.parent_path());
    fs::copy_file(chosen.model_file, out_pt.string() + ".tmp", fs::copy_options::overwrite_existing);
    fs::rename(out_pt.string() + ".tmp", out_pt);
    auto chosen_card = read_card(fs::path(chosen.model_file).replace_extension(".json").string()).value();
    ModelCard card = chosen_card;
    card.name = out_pt.stem().string();
    card.file = out_pt.filename().string();
    card.sha256 = sha256_file(out_pt.string()).value();
    card.card_path = fs::path(out_pt).replace_extension(".json").string();
    card.accuracy = AccuracyRecord{test_data.name(), static_cast<std::size_t>(test.split.clean.size(0)), chosen.test.top1,
                                   chosen.test.top5};
    json grid = json::array();
    for (const auto& c : result.candidates) {
      grid.push_back({{"setting", setting_json(c.setting)},
                      {"validation_top1", c.validation_top1},
                      {"validation_instability", c.validation_instability}});
    }
    card.training = {{"base_model", base.name},
                     {"base_sha256", base.sha256},
                     {"base_training", base.training},
                     {"hardening",
                      {{"method", budget.distill ? "stability training (instability paper 9.1) with L0 distilled: L = KL(base(clean) || model) + alpha * stability loss"
                                                 : "stability training (instability paper 9.1): L = cross entropy + alpha * stability loss"},
                       {"chosen", setting_json(chosen.setting)},
                       {"fine_tuning",
                        {{"dataset", train_data.name()},
                         {"images", train.indices.size()},
                         {"epochs", budget.epochs},
                         {"batch_size", budget.batch_size},
                         {"learning_rate", budget.learning_rate},
                         {"optimizer", budget.optimizer == FinetuneOptimizer::kAdamW ? "AdamW, no weight decay, cosine to 0"
                                                                                   : "SGD, Nesterov momentum 0.9, cosine to 0"},
                         {"frozen_batch_norm", budget.frozen_batch_norm},
                         {"task_loss", budget.distill ? "distillation from the base" : "cross entropy"},
                         {"seed", budget.seed}}},
                       {"validation", {{"images", validation.indices.size()}, {"environments", result.train_environments}}},
                       {"grid", grid},
                       {"heldout_environments", result.heldout_environments},
                       {"before", {{"top1", result.before.top1}, {"heldout_instability", result.before.heldout_instability}}},
                       {"after", {{"top1", chosen.test.top1}, {"heldout_instability", chosen.test.heldout_instability}}}}}};
    card.provenance["hardened_by"] = "edgefleet harden";
    card.provenance["hardened_from"] = base.name;
    const Status written = write_card(card, card.card_path);
    if (!written.is_ok()) throw Error(written);
    result.card = card;
    return result;
  });
}

}  // namespace edgefleet
