#include "model/graph_rewrite.h"

#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>
#include <set>

namespace edgefleet {
namespace {

using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;

// Calibration ranges of the thread calibrating now (observe_range is a graph op, so the
// ranges reach it through this rather than through an argument).
thread_local std::vector<std::pair<float, float>>* current_ranges = nullptr;

at::Tensor observe_range(const at::Tensor& x, int64_t slot) {
  if (current_ranges && x.numel() > 0 && slot >= 0 && slot < static_cast<int64_t>(current_ranges->size())) {
    const auto [low, high] = at::aminmax(x);
    auto& range = (*current_ranges)[slot];
    range.first = std::min(range.first, low.item<float>());
    range.second = std::max(range.second, high.item<float>());
  }
  return x.clone();
}

TORCH_LIBRARY(edgefleet, m) { m.def("observe_range(Tensor x, int slot) -> Tensor", observe_range); }

bool in(const std::set<std::string>& names, const Node* node) {
  return node->kind().is_aten() && names.count(node->kind().toUnqualString()) != 0;
}

// Ops that move or reshape values without changing them: rounding after them is a no-op.
const std::set<std::string> kValuePreserving = {"flatten", "view", "reshape", "contiguous", "squeeze", "unsqueeze",
                                                "dropout", "feature_dropout", "transpose", "permute", "t", "size",
                                                "to", "detach", "max_pool1d", "max_pool2d", "max_pool3d"};
// Activations an INT8 engine fuses into the op before them (one quantisation after both).
const std::set<std::string> kFusedActivations = {"relu", "relu_", "relu6", "clamp", "clamp_", "hardtanh", "hardtanh_"};

bool is_tensor(const Value* v) { return v->type()->kind() == c10::TypeKind::TensorType; }

// The values a reduced-precision device stores between layers, in graph order.
std::vector<Value*> layer_boundaries(Graph& graph, bool fuse_activations) {
  std::vector<Value*> out;
  for (Value* input : graph.inputs()) {
    if (is_tensor(input)) out.push_back(input);
  }
  for (Node* node : graph.nodes()) {
    if (!node->kind().is_aten() || in(kValuePreserving, node)) continue;
    for (Value* v : node->outputs()) {
      if (!is_tensor(v)) continue;
      if (fuse_activations && v->uses().size() == 1 && in(kFusedActivations, v->uses()[0].user)) continue;
      out.push_back(v);
    }
  }
  return out;
}

// Inserts make(v) right after v is defined and makes every former user of v use the result.
void wrap(Graph& graph, Value* v, const std::function<Value*(Value*)>& make) {
  const auto uses = v->uses();
  Node* before = v->node()->kind() == c10::prim::Param ? *graph.nodes().begin() : v->node()->next();
  torch::jit::WithInsertPoint guard(before);
  Value* out = make(v);
  for (const auto& use : uses) use.user->replaceInput(use.offset, out);
}

// Replaces the constant tensor feeding input `index` of `node` by `f(tensor)`.
void replace_constant_input(Graph& graph, Node* node, std::size_t index, const std::function<at::Tensor(const at::Tensor&)>& f) {
  auto value = torch::jit::toIValue(node->input(index));
  if (!value || !value->isTensor()) return;
  torch::jit::WithInsertPoint guard(node);
  node->replaceInput(index, graph.insertConstant(f(value->toTensor())));
}

at::Tensor quantize_weight(const at::Tensor& w, bool per_channel) {
  if (!w.is_floating_point() || w.dim() < 2) return w;
  auto flat = w.reshape({per_channel ? w.size(0) : 1, -1});
  auto scale = (flat.abs().amax(1, true) / 127.0).clamp_min(1e-12);
  return ((flat / scale).round().clamp(-127, 127) * scale).reshape(w.sizes()).contiguous();
}

}  // namespace

int set_pooling_ceil_mode(torch::jit::Module& frozen, CeilMode mode) {
  if (mode == CeilMode::kAsSaved) return 0;
  auto graph = frozen.get_method("forward").graph();
  int changed = 0;
  for (Node* node : graph->nodes()) {
    std::size_t index = 0;
    if (in({"max_pool1d", "max_pool2d", "max_pool3d", "max_pool2d_with_indices"}, node)) {
      index = 5;
    } else if (in({"avg_pool1d", "avg_pool2d", "avg_pool3d"}, node)) {
      index = 4;
    } else {
      continue;
    }
    if (node->inputs().size() <= index) continue;
    auto current = torch::jit::toIValue(node->input(index));
    if (!current || !current->isBool()) continue;
    const bool wanted = mode == CeilMode::kFlip ? !current->toBool() : mode == CeilMode::kOn;
    if (wanted == current->toBool()) continue;
    torch::jit::WithInsertPoint guard(node);
    node->replaceInput(index, graph->insertConstant(wanted));
    ++changed;
  }
  return changed;
}

void round_to_precision(torch::jit::Module& frozen, c10::ScalarType type) {
  auto graph = frozen.get_method("forward").graph();
  for (Node* node : graph->nodes()) {
    for (std::size_t i = 0; i < node->inputs().size(); ++i) {
      if (node->input(i)->node()->kind() != c10::prim::Constant) continue;
      replace_constant_input(*graph, node, i, [&](const at::Tensor& t) {
        return t.is_floating_point() ? t.to(type).to(at::kFloat) : t;
      });
    }
  }
  for (Value* v : layer_boundaries(*graph, /*fuse_activations=*/false)) {
    wrap(*graph, v, [&](Value* x) {
      Value* low = graph->insert(c10::aten::to, {x, type});
      return graph->insert(c10::aten::to, {low, at::kFloat});
    });
  }
}

Status fake_quantize_int8(torch::jit::Module& calibrate_on, torch::jit::Module& target, bool per_channel_weights,
                          const at::Tensor& calibration) {
  if (calibration.dim() < 1 || calibration.size(0) == 0) return invalid_argument("INT8 needs calibration inputs");
  // 1. Activation ranges, measured on the FP32 model.
  auto probe = calibrate_on.get_method("forward").graph();
  const auto probed = layer_boundaries(*probe, /*fuse_activations=*/true);
  const auto observe = c10::Symbol::fromQualString("edgefleet::observe_range");
  for (std::size_t slot = 0; slot < probed.size(); ++slot) {
    wrap(*probe, probed[slot], [&](Value* x) { return probe->insert(observe, {x, static_cast<int64_t>(slot)}); });
  }
  std::vector<std::pair<float, float>> ranges(probed.size(), {std::numeric_limits<float>::max(), std::numeric_limits<float>::lowest()});
  current_ranges = &ranges;
  try {
    torch::InferenceMode guard;
    for (int64_t begin = 0; begin < calibration.size(0); begin += 32) {
      calibrate_on.forward({calibration.slice(0, begin, std::min<int64_t>(begin + 32, calibration.size(0)))});
    }
  } catch (...) {
    current_ranges = nullptr;
    throw;
  }
  current_ranges = nullptr;

  // 2. The same boundaries in the target: weights quantised, activations fake-quantised.
  auto graph = target.get_method("forward").graph();
  for (Node* node : graph->nodes()) {
    if (in({"conv1d", "conv2d", "conv3d", "_convolution", "linear"}, node) && node->inputs().size() > 1) {
      replace_constant_input(*graph, node, 1, [&](const at::Tensor& w) { return quantize_weight(w, per_channel_weights); });
    }
  }
  const auto boundaries = layer_boundaries(*graph, /*fuse_activations=*/true);
  if (boundaries.size() != ranges.size()) return internal_error("INT8: the calibrated and target graphs differ");
  for (std::size_t slot = 0; slot < boundaries.size(); ++slot) {
    auto [low, high] = ranges[slot];
    if (low > high) continue;  // never reached (empty tensor)
    low = std::min(low, 0.0f);
    high = std::max(high, 0.0f);
    const double scale = std::max(static_cast<double>(high - low) / 255.0, 1e-8);
    const int64_t zero_point = std::clamp<int64_t>(std::llround(-low / scale), 0, 255);
    wrap(*graph, boundaries[slot], [&](Value* x) {
      return graph->insert(c10::aten::fake_quantize_per_tensor_affine,
                           {x, scale, zero_point, static_cast<int64_t>(0), static_cast<int64_t>(255)});
    });
  }
  return Status::ok();
}

}  // namespace edgefleet
