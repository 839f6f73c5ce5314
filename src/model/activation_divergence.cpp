#include "edgefleet/activation_divergence.h"

#include <torch/csrc/jit/passes/inliner.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "model/torchscript_graph.h"

namespace edgefleet {

using torch::jit::Node;
using torch::jit::Value;

namespace {

// The operations whose outputs a user reads as layers.
bool is_layer(const Node* n) {
  static const std::vector<c10::Symbol> kinds = {
      c10::aten::conv2d, c10::aten::_convolution, c10::aten::conv1d, c10::aten::linear, c10::aten::matmul, c10::aten::addmm,
      c10::aten::add, c10::aten::add_, c10::aten::cat, c10::aten::max_pool2d, c10::aten::avg_pool2d,
      c10::aten::adaptive_avg_pool2d, c10::aten::adaptive_max_pool2d, c10::aten::mean};
  if (std::find(kinds.begin(), kinds.end(), n->kind()) == kinds.end()) return false;
  return n->outputs().size() >= 1 && n->output(0)->type()->cast<c10::TensorType>();
}

// "features.3.conv.0: conv2d" from the inlined call stack's module instances.
std::string layer_name(const Node* n) {
  std::string path;
  if (auto stack = n->callstack()) {
    for (const auto& entry : (*stack)->vec()) {
      const auto& info = std::get<2>(entry);
      // "SELF" marks a method a module calls on itself, not a submodule.
      if (!info || info->instance_name().empty() || info->instance_name() == "SELF") continue;
      path += (path.empty() ? "" : ".") + info->instance_name();
    }
  }
  const std::string op = n->kind().toUnqualString();
  return path.empty() ? op : path + ": " + op;
}

LayerDivergence compare(const std::string& name, const torch::Tensor& a, const torch::Tensor& b) {
  LayerDivergence d;
  d.layer = name;
  d.shape = a.sizes().vec();
  const torch::Tensor x = a.to(torch::kDouble).flatten(), y = b.to(torch::kDouble).flatten();
  const double na = x.norm().item<double>(), nb = y.norm().item<double>();
  const double diff = (x - y).norm().item<double>();
  d.cosine = na > 0 && nb > 0 ? (x * y).sum().item<double>() / (na * nb) : (diff == 0 ? 1.0 : 0.0);
  d.relative_error = na > 0 ? diff / na : (diff == 0 ? 0.0 : INFINITY);
  return d;
}

}  // namespace

Expected<ActivationDivergence> compare_activations(const ModelCard& card, const std::vector<float>& a, const std::vector<float>& b,
                                                   double min_cosine) {
  if (card.format != ModelFormat::kTorchScript) {
    return unsupported("activation comparison: " + card.name + " is not a TorchScript model (its layers cannot be read)");
  }
  const std::vector<std::int64_t> shape = {1, card.input.channels(), card.input.height, card.input.width};
  const auto size = static_cast<std::size_t>(shape[1] * shape[2] * shape[3]);
  if (a.size() != size || b.size() != size) {
    return invalid_argument("activation comparison: inputs must hold " + std::to_string(size) + " values (" + card.name + "'s input)");
  }
  return capture([&]() -> ActivationDivergence {
    torch::jit::Module module = load_torchscript_module(card, "activation comparison");
    // Frozen (attributes become constants, so branches on settings such as a block's
    // use_res_connect fold away and their layers are top-level), without numeric rewrites.
    module = torch::jit::freeze(module, c10::nullopt, /*optimize_numerics=*/false);
    auto graph = module.get_method("forward").graph()->copy();
    torch::jit::Inline(*graph);
    if (graph->inputs().size() != 2) throw Error(unsupported("activation comparison: forward must take one input tensor"));
    std::vector<const Value*> wanted;
    std::vector<std::string> names;
    for (const Node* n : graph->nodes()) {
      if (!is_layer(n)) continue;
      wanted.push_back(n->output(0));
      names.push_back(layer_name(n));
    }
    wanted.push_back(graph->outputs().at(0));
    names.push_back("logits");
    torch::NoGradGuard no_grad;
    const torch::Tensor ta = torch::from_blob(const_cast<float*>(a.data()), shape).clone();
    const torch::Tensor tb = torch::from_blob(const_cast<float*>(b.data()), shape).clone();
    std::vector<c10::IValue> va, vb;
    try {
      va = probe_graph_values(graph, module._ivalue(), ta, wanted);
      vb = probe_graph_values(graph, module._ivalue(), tb, wanted);
    } catch (const std::exception& e) {
      throw Error(invalid_argument("activation comparison: " + card.name + " does not run: " + first_meaningful_line(e.what())));
    }
    ActivationDivergence out;
    out.min_cosine = min_cosine;
    out.layers.push_back(compare("input", ta, tb));
    for (std::size_t i = 0; i < wanted.size(); ++i) {
      if (!va[i].isTensor() || !vb[i].isTensor()) continue;
      // The logits are often the last layer's own output: listed once.
      if (i + 1 == wanted.size() && i > 0 && wanted[i] == wanted[i - 1]) {
        out.layers.back().layer += " (logits)";
        continue;
      }
      out.layers.push_back(compare(names[i], va[i].toTensor(), vb[i].toTensor()));
    }
    for (std::size_t i = 0; i < out.layers.size(); ++i) {
      if (out.layers[i].cosine < min_cosine) {
        out.parted_at = static_cast<int>(i);
        break;
      }
    }
    return out;
  });
}

nlohmann::json activation_divergence_to_json(const ActivationDivergence& d) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : d.layers) {
    layers.push_back({{"layer", l.layer}, {"shape", l.shape}, {"cosine", l.cosine}, {"relative_error", l.relative_error}});
  }
  nlohmann::json j{{"min_cosine", d.min_cosine}, {"layers", layers}};
  j["parted_at"] = d.parted_at >= 0 ? nlohmann::json(d.layers[static_cast<std::size_t>(d.parted_at)].layer) : nlohmann::json(nullptr);
  return j;
}

}  // namespace edgefleet
