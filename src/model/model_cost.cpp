#include <optional>

#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/csrc/jit/passes/inliner.h>

#include "model/torchscript_cost.h"

namespace edgefleet {
namespace {

// The object a chain of prim::GetAttr nodes starting at the graph's `self` input reads.
std::optional<c10::IValue> resolve_attribute(const torch::jit::Value* value, const c10::IValue& self) {
  const torch::jit::Node* node = value->node();
  if (node->kind() == c10::prim::Param) return value->offset() == 0 ? std::optional<c10::IValue>(self) : std::nullopt;
  if (node->kind() != c10::prim::GetAttr) return std::nullopt;
  auto base = resolve_attribute(node->input(0), self);
  if (!base || !base->isObject()) return std::nullopt;
  return base->toObjectRef().getAttr(node->s(c10::attr::name));
}

// A value's shape: from the trace when recorded, else from the module attribute it reads
// (weights reach the traced graph through GetAttr and carry no shape).
std::vector<std::int64_t> concrete_sizes(const torch::jit::Value* value, const c10::IValue& self) {
  if (auto type = value->type()->cast<c10::TensorType>()) {
    if (auto sizes = type->sizes().concrete_sizes()) return *sizes;
  }
  auto attribute = resolve_attribute(value, self);
  if (attribute && attribute->isTensor()) return attribute->toTensor().sizes().vec();
  return {};
}

std::int64_t product(const std::vector<std::int64_t>& sizes, std::size_t from = 0) {
  std::int64_t p = 1;
  for (std::size_t i = from; i < sizes.size(); ++i) p *= sizes[i];
  return p;
}

// MACs of one node: conv = out elements * (C_in/groups) * kernel area; linear/matmul =
// out elements * reduced dimension.
std::int64_t node_macs(const torch::jit::Node* node, const c10::IValue& self) {
  const auto kind = node->kind();
  if (kind == c10::aten::_convolution || kind == c10::aten::conv2d || kind == c10::aten::conv1d ||
      kind == c10::aten::convolution) {
    const auto out = concrete_sizes(node->output(), self);
    const auto weight = concrete_sizes(node->input(1), self);
    if (out.empty() || weight.size() < 3) return 0;
    // weight: [C_out, C_in/groups, k...]; every output element reads C_in/groups * k... inputs.
    return product(out) * product(weight, 1);
  }
  if (kind == c10::aten::linear || kind == c10::aten::matmul || kind == c10::aten::mm || kind == c10::aten::addmm ||
      kind == c10::aten::bmm) {
    const auto out = concrete_sizes(node->output(), self);
    const torch::jit::Value* a = kind == c10::aten::addmm ? node->input(1) : node->input(0);
    const auto in = concrete_sizes(a, self);
    if (out.empty() || in.empty()) return 0;
    return product(out) * in.back();
  }
  return 0;
}

std::int64_t count_macs(const torch::jit::Block* block, const c10::IValue& self) {
  std::int64_t total = 0;
  for (const auto* node : block->nodes()) {
    total += node_macs(node, self);
    for (const auto* sub : node->blocks()) total += count_macs(sub, self);
  }
  return total;
}

}  // namespace

Expected<ModelCost> torchscript_cost(torch::jit::Module& module, const std::vector<std::int64_t>& input_shape) {
  return capture([&]() -> ModelCost {
    ModelCost cost;
    for (const auto& p : module.parameters()) cost.params += p.numel();
    const bool was_training = module.is_training();
    module.eval();
    torch::NoGradGuard no_grad;
    torch::jit::Stack inputs{torch::zeros(input_shape)};
    auto traced = torch::jit::tracer::trace(
        inputs, [&](torch::jit::Stack in) -> torch::jit::Stack { return {module.forward(in)}; },
        [](const torch::autograd::Variable&) { return std::string(); }, /*strict=*/false, /*force_outplace=*/false,
        &module);
    module.train(was_training);
    auto graph = traced.first->graph;
    torch::jit::Inline(*graph);
    cost.macs = count_macs(graph->block(), module._ivalue());
    const std::int64_t batch = input_shape.empty() ? 1 : input_shape[0];
    cost.macs /= std::max<std::int64_t>(batch, 1);
    return cost;
  });
}

}  // namespace edgefleet
