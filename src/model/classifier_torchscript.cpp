#include <torch/csrc/jit/api/module.h>

#include <algorithm>
#include <chrono>
#include <optional>

#include "model/classifier_engines.h"
#include "model/graph_rewrite.h"
#include "core/thread_count.h"
#include "model/torchscript_cost.h"

namespace edgefleet {
namespace {

class TorchScriptClassifier final : public Classifier {
 public:
  // `small_batch` (optional) serves batches below kSmallBatch: for tiny models the plain
  // frozen graph beats the optimised one, whose layout conversions cost more than they save.
  TorchScriptClassifier(ModelCard card, torch::jit::Module module, std::optional<torch::jit::Module> small_batch,
                        std::string engine, InferenceGraph graph)
      : card_(std::move(card)),
        module_(std::move(module)),
        small_batch_(std::move(small_batch)),
        engine_(std::move(engine)),
        graph_(small_batch_ ? InferenceGraph::kFrozen : graph) {}

  static constexpr int kSmallBatch = 8;

  const ModelCard& card() const override { return card_; }
  std::string engine() const override { return engine_; }
  InferenceGraph batch1_graph() const override { return graph_; }

  Expected<std::vector<float>> infer(const float* batch, int n) override {
    if (n <= 0) return invalid_argument("infer: batch size must be positive, got " + std::to_string(n));
    return capture([&]() -> std::vector<float> {
      const auto& in = card_.input;
      torch::InferenceMode guard;
      auto input = torch::from_blob(const_cast<float*>(batch), {n, in.channels(), in.height, in.width}, torch::kFloat32);
      torch::jit::Module& module = n < kSmallBatch && small_batch_ ? *small_batch_ : module_;
      auto output = module.forward({input}).toTensor().to(torch::kFloat32).contiguous();
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
    torch::set_num_threads(resolve_thread_count(threads));
  }

 private:
  static std::string shape_string(const torch::Tensor& t) {
    std::string s = "[";
    for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
    return s + "]";
  }

  ModelCard card_;
  torch::jit::Module module_;
  std::optional<torch::jit::Module> small_batch_;
  std::string engine_;
  InferenceGraph graph_;
};

// Whether `a` runs batch 1 faster than `b`: interleaved runs (so both see the same machine
// load), medians compared, at most ~30 runs each or ~100 ms each. Only tiny models, whose
// forward is mostly per-call overhead, are raced: when `b` takes over 2 ms a pass, `a` is
// taken as not faster (the race would cost a model load hundreds of ms for no gain).
bool faster_at_batch1(torch::jit::Module& a, torch::jit::Module& b, const InputContract& in) {
  torch::InferenceMode guard;
  auto input = torch::full({1, in.channels(), in.height, in.width}, 0.5f);
  auto time_one = [&](torch::jit::Module& m) {
    const auto start = std::chrono::steady_clock::now();
    m.forward({input});
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  };
  for (int i = 0; i < 2; ++i) time_one(b);
  if (time_one(b) > 2.0) return false;
  for (int i = 0; i < 3; ++i) {
    time_one(a);
    time_one(b);
  }
  std::vector<double> ta, tb;
  double spent = 0.0;
  while (ta.size() < 30 && spent < 200.0) {
    ta.push_back(time_one(a));
    tb.push_back(time_one(b));
    spent += ta.back() + tb.back();
  }
  std::sort(ta.begin(), ta.end());
  std::sort(tb.begin(), tb.end());
  return ta[ta.size() / 2] < tb[tb.size() / 2];
}

// Collects the warnings libtorch raises while alive instead of printing them.
class WarningCollector : public c10::WarningHandler {
 public:
  void process(const c10::SourceLocation&, const std::string& message, bool) override { messages.push_back(message); }
  std::vector<std::string> messages;
};

// libtorch 1.13's optimize_for_inference can compute wrong answers: its MKLDNN ReLU6
// (prim::MKLDNNHardTanh_) writes through an output view of the tensor's logical size over a
// channel-padded buffer (the "An output with one or more elements was resized" warning), so
// part of the layer is never clamped — on mobilenet_v1_0.25 the logits moved by up to 1.7
// and top-1 changed on 2 of 4 inputs. The optimised graph is used only when it gives the
// frozen graph's logits on a probe batch, with no warning.
bool optimized_agrees(torch::jit::Module& frozen, torch::jit::Module& optimized, const InputContract& in) {
  torch::InferenceMode guard;
  const std::int64_t n = 2, numel = n * in.channels() * in.height * in.width;
  // A deterministic spread of values over the input range (no random state touched).
  auto input = torch::frac(torch::arange(numel, torch::kFloat32) * 0.6180339887f).reshape({n, in.channels(), in.height, in.width});
  input = input * (in.range_max - in.range_min) + in.range_min;
  WarningCollector warnings;
  c10::Warning::WarningHandlerGuard collect(&warnings);
  const auto expected = frozen.forward({input}).toTensor().to(torch::kFloat32);
  const auto got = optimized.forward({input}).toTensor().to(torch::kFloat32);
  if (!warnings.messages.empty() || !got.sizes().equals(expected.sizes())) return false;
  const double scale = std::max(1.0, expected.abs().max().item<double>());
  return (got - expected).abs().max().item<double>() <= 1e-3 * scale;
}

struct InferenceGraphs {
  torch::jit::Module optimized;  // frozen + libtorch's inference optimisations
  torch::jit::Module frozen;     // frozen only: weights constant, conv+batch-norm folded
};

// Returns nullopt when the model cannot be frozen (it then runs as saved).
std::optional<InferenceGraphs> inference_graphs(const torch::jit::Module& module) {
  try {
    // Only forward is kept: inference never calls another method, and preserving one (the zoo's
    // `features`) keeps its weights as attributes, which the optimiser then cannot fold or
    // prepack (a pruned zoo MobileNetV2 ran 0.74 ms with it, 0.37 ms without: docs/benchmarks.md).
    torch::jit::Module frozen = torch::jit::freeze(module.clone());
    // Frozen once: optimize_for_inference rewrites a frozen module's graph in place, and a
    // clone has its own copy of the graph.
    torch::jit::Module to_optimize = frozen.clone();
    return InferenceGraphs{torch::jit::optimize_for_inference(to_optimize), frozen};
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

bool simulates_device(const LoadOptions& options) {
  return options.precision != Precision::kFp32 || options.ceil_mode != CeilMode::kAsSaved;
}

// The frozen graph rewritten to run as a device would (inference_setting.h); the engine
// name says what was simulated.
Expected<std::pair<torch::jit::Module, std::string>> simulated_module(const torch::jit::Module& module, const ModelCard& card,
                                                                      const LoadOptions& options) {
  const std::string setting = precision_name(options.precision) + (options.ceil_mode == CeilMode::kAsSaved ? "" : ", ceil");
  try {
    auto freeze = [&] { return torch::jit::freeze(module.clone()); };
    torch::jit::Module frozen = freeze();
    std::string engine = "libtorch (";
    if (options.precision == Precision::kBf16 || options.precision == Precision::kFp16) {
      round_to_precision(frozen, options.precision == Precision::kFp16 ? at::kHalf : at::kBFloat16);
      engine += precision_name(options.precision) + " emulated";
    } else if (is_int8(options.precision)) {
      const auto& in = card.input;
      const int64_t per_input = static_cast<int64_t>(in.channels()) * in.height * in.width;
      const int64_t n = static_cast<int64_t>(options.calibration.size()) / per_input;
      if (n == 0 || static_cast<int64_t>(options.calibration.size()) % per_input != 0) {
        return invalid_argument(card.name + ": " + precision_name(options.precision) +
                                " needs calibration inputs (whole multiples of " + std::to_string(per_input) + " floats)");
      }
      auto calibration = torch::from_blob(const_cast<float*>(options.calibration.data()),
                                          {n, in.channels(), in.height, in.width}, torch::kFloat32);
      torch::jit::Module calibrate_on = freeze();
      Status s = fake_quantize_int8(calibrate_on, frozen, options.precision == Precision::kInt8PerChannel, calibration);
      if (!s.is_ok()) return s;
      engine += precision_name(options.precision) + " fake-quantised on " + std::to_string(n) + " calibration inputs";
    } else {
      engine += "fp32";
    }
    if (options.ceil_mode != CeilMode::kAsSaved) {
      engine += ", ceil mode changed on " + std::to_string(set_pooling_ceil_mode(frozen, options.ceil_mode)) + " pooling layers";
    }
    // A rewrite that breaks the model (e.g. ceil mode changing a shape a later op depends on)
    // fails here, once, instead of on every batch.
    torch::InferenceMode guard;
    const auto& in = card.input;
    frozen.forward({torch::full({1, in.channels(), in.height, in.width}, 0.5f)});
    return std::make_pair(std::move(frozen), engine + ")");
  } catch (const std::exception& e) {
    return invalid_argument(card.name + ": cannot run as " + setting + ": " + first_meaningful_line(e.what()));
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
  torch::set_num_threads(resolve_thread_count(options.threads));
  if (simulates_device(options)) {
    auto simulated = simulated_module(module, card, options);
    if (!simulated) return simulated.status();
    return std::unique_ptr<Classifier>(std::make_unique<TorchScriptClassifier>(card, std::move(simulated->first), std::nullopt,
                                                                               std::move(simulated->second), InferenceGraph::kNone));
  }
  std::string engine = "libtorch-unoptimized";
  InferenceGraph graph = InferenceGraph::kNone;
  std::optional<torch::jit::Module> small_batch;
  if (options.optimize) {
    if (auto graphs = inference_graphs(module)) {
      engine = "libtorch";
      graph = InferenceGraph::kOptimized;
      try {
        if (!optimized_agrees(graphs->frozen, graphs->optimized, card.input)) {
          graphs->optimized = graphs->frozen;  // every batch runs the frozen graph
          engine = "libtorch (frozen graph: the optimised one disagreed with it)";
          graph = InferenceGraph::kFrozen;
        } else if (faster_at_batch1(graphs->frozen, graphs->optimized, card.input)) {
          // Keep the frozen-only graph for small batches where it measured faster (tiny models).
          small_batch = graphs->frozen;
        }
      } catch (const std::exception&) {
        // A model that fails on this probe fails the same way at inference, with its message.
      }
      module = std::move(graphs->optimized);
    }
  }
  auto classifier = std::make_unique<TorchScriptClassifier>(card, std::move(module), std::move(small_batch), std::move(engine), graph);
  return std::unique_ptr<Classifier>(std::move(classifier));
}

}  // namespace edgefleet
