#include <torch/csrc/jit/api/module.h>

#include <thread>

#include "core/classifier_engines.h"
#include "core/torchscript_cost.h"

namespace edgefleet {
namespace {

class TorchScriptClassifier final : public Classifier {
 public:
  TorchScriptClassifier(ModelCard card, torch::jit::Module module, bool optimized)
      : card_(std::move(card)), module_(std::move(module)), optimized_(optimized) {}

  const ModelCard& card() const override { return card_; }
  std::string engine() const override { return optimized_ ? "libtorch" : "libtorch-unoptimized"; }

  Expected<std::vector<float>> infer(const float* batch, int n) override {
    if (n <= 0) return invalid_argument("infer: batch size must be positive, got " + std::to_string(n));
    return capture([&]() -> std::vector<float> {
      const auto& in = card_.input;
      torch::InferenceMode guard;
      auto input = torch::from_blob(const_cast<float*>(batch), {n, in.channels(), in.height, in.width}, torch::kFloat32);
      auto output = module_.forward({input}).toTensor().to(torch::kFloat32).contiguous();
      if (output.dim() != 2 || output.size(0) != n || output.size(1) != card_.classes) {
        throw Error(invalid_argument(card_.name + ": model returned shape " + shape_string(output) + ", expected [" +
                                     std::to_string(n) + ", " + std::to_string(card_.classes) + "]"));
      }
      return std::vector<float>(output.data_ptr<float>(), output.data_ptr<float>() + output.numel());
    });
  }

  // Counted on the file as saved: freezing turns parameters into constants.
  Expected<ModelCost> cost() override {
    const auto& in = card_.input;
    try {
      torch::jit::Module original = torch::jit::load(card_.model_path());
      return torchscript_cost(original, {1, in.channels(), in.height, in.width});
    } catch (const std::exception& e) {
      return corrupt(card_.model_path() + ": " + first_meaningful_line(e.what()));
    }
  }

  void set_threads(int threads) override {
    torch::set_num_threads(threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  }

 private:
  static std::string shape_string(const torch::Tensor& t) {
    std::string s = "[";
    for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
    return s + "]";
  }

  ModelCard card_;
  torch::jit::Module module_;
  bool optimized_;
};

// Freezes the module (weights become constants, conv+batch-norm folded) and applies
// libtorch's inference optimisations. Returns nullopt when the model cannot be frozen.
std::optional<torch::jit::Module> frozen_for_inference(const torch::jit::Module& module) {
  try {
    std::vector<std::string> keep;
    if (module.find_method("features")) keep.push_back("features");
    torch::jit::Module frozen = torch::jit::freeze(module.clone(), keep);
    return torch::jit::optimize_for_inference(frozen, keep);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

Expected<std::unique_ptr<Classifier>> load_torchscript_classifier(const ModelCard& card, const LoadOptions& options) {
  torch::jit::Module module;
  try {
    module = torch::jit::load(card.model_path());
  } catch (const std::exception& e) {
    std::string reason = e.what();
    reason = reason.substr(0, reason.find('\n'));
    return corrupt(card.model_path() + ": not a loadable TorchScript model (" + reason + ")");
  }
  module.eval();
  bool optimized = false;
  if (options.optimize) {
    if (auto frozen = frozen_for_inference(module)) {
      module = std::move(*frozen);
      optimized = true;
    }
  }
  auto classifier = std::make_unique<TorchScriptClassifier>(card, std::move(module), optimized);
  classifier->set_threads(options.threads);
  return std::unique_ptr<Classifier>(std::move(classifier));
}

}  // namespace edgefleet
