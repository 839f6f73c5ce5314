// Classifier: one inference interface over two engines — libtorch (TorchScript) and OpenCV
// DNN (ONNX). Batch of preprocessed NCHW floats in, logits out.
// Not thread-safe: use one Classifier per thread. set_threads() changes the process-wide
// pool of the classifier's engine (libtorch and OpenCV each keep one).
//
//   auto card = resolve_model("mobilenetv2_w050").value();
//   auto model = load_classifier(card).value();
//   auto logits = model->infer(batch.data(), 32).value();  // 32 * card.classes floats
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "edgefleet/inference_setting.h"
#include "edgefleet/model_card.h"
#include "edgefleet/status.h"

namespace edgefleet {

struct ModelCost {
  std::int64_t params = 0;
  std::int64_t macs = 0;  // multiply-accumulates for one input
};

// The TorchScript graph a classifier runs: frozen with libtorch's inference optimisations
// (oneDNN layouts, fused activations), or frozen only (conv+BN folded).
enum class InferenceGraph { kNone, kOptimized, kFrozen };

class Classifier {
 public:
  virtual ~Classifier() = default;

  virtual const ModelCard& card() const = 0;
  // "libtorch" | "libtorch-unoptimized" | "opencv-dnn", then any simulated setting in
  // parentheses, e.g. "libtorch (fp16 emulated)".
  virtual std::string engine() const = 0;

  // `batch` holds n * C * H * W floats laid out as the card's input contract says.
  // Returns n * classes logits, row-major; fails with invalid_argument on a bad n, or
  // internal when the engine throws.
  virtual Expected<std::vector<float>> infer(const float* batch, int n) = 0;

  // The graph a batch of one runs (what a latency model must predict): kFrozen when the
  // optimised graph disagreed with it or ran a batch of one slower at load; kNone for other
  // engines, unoptimised loads and simulated settings.
  virtual InferenceGraph batch1_graph() const { return InferenceGraph::kNone; }

  // Counts parameters and MACs from the loaded model itself (not from the card).
  virtual Expected<ModelCost> cost() = 0;

  virtual void set_threads(int threads) = 0;
};

struct LoadOptions {
  bool verify_sha256 = true;  // refuse a file whose hash differs from the card's
  int threads = 0;            // 0 = one per core
  // TorchScript: freeze and fold (conv+BN) and apply libtorch's inference optimisations; for
  // batches below 8, the frozen graph without them is used when a batch-1 probe at load time
  // finds it faster (tiny models). Falls back to the model as saved when it cannot be frozen.
  // Outputs agree with the unoptimised model to ~1e-5.
  bool optimize = true;
  // Simulated device settings (TorchScript only; edgefleet/inference_setting.h). Either one
  // runs the frozen graph rewritten, without libtorch's inference optimisations.
  Precision precision = Precision::kFp32;
  CeilMode ceil_mode = CeilMode::kAsSaved;
  // INT8 precisions: model inputs (whole multiples of C*H*W floats) the activation ranges
  // are calibrated on — a held-out set, not the evaluated inputs.
  std::vector<float> calibration;
};

// Loads the model a card describes with the engine its format names. Fails with not_found
// (missing file), corrupt (hash mismatch, unreadable model), invalid_argument (the model's
// output does not match the card's class count, a simulated setting the engine cannot run or
// that breaks the model, INT8 without calibration inputs).
Expected<std::unique_ptr<Classifier>> load_classifier(const ModelCard& card, const LoadOptions& options = {});

}  // namespace edgefleet
