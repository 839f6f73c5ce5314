#include "model/torchscript_graph.h"

#include <torch/csrc/jit/api/function_impl.h>

#include <unordered_map>

namespace edgefleet {

using torch::jit::Node;
using torch::jit::Value;

torch::jit::Module load_torchscript_module(const ModelCard& card, const std::string& who) {
  torch::jit::Module module;
  try {
    module = torch::jit::load(card.model_path());
  } catch (const std::exception& e) {
    throw Error(corrupt(who + ": cannot load " + card.model_path() + ": " + first_meaningful_line(e.what())));
  }
  module.eval();
  return module;
}

std::string graph_node_location(const Node* node) {
  std::string out = node->kind().toQualString();
  if (auto flc = node->sourceRange().file_line_col()) {
    out += " (" + std::get<0>(*flc) + ":" + std::to_string(std::get<1>(*flc)) + ")";
  }
  return out;
}

std::optional<c10::IValue> graph_constant(const Value* v) { return torch::jit::toIValue(v); }

std::optional<std::int64_t> graph_constant_int(const Value* v) {
  auto c = graph_constant(v);
  if (!c || !c->isInt()) return std::nullopt;
  return c->toInt();
}

std::optional<std::vector<std::int64_t>> graph_constant_ints(const Value* v) {
  if (v->node()->kind() == c10::prim::ListConstruct) {
    std::vector<std::int64_t> out;
    for (const Value* e : v->node()->inputs()) {
      auto i = graph_constant_int(e);
      if (!i) return std::nullopt;
      out.push_back(*i);
    }
    return out;
  }
  auto c = graph_constant(v);
  if (!c) return std::nullopt;
  if (c->isInt()) return std::vector<std::int64_t>{c->toInt()};
  if (c->isIntList()) return c->toIntVector();
  return std::nullopt;
}

bool graph_value_is_none(const Value* v) { return v->type()->kind() == c10::TypeKind::NoneType || v->mustBeNone(); }

std::vector<c10::IValue> probe_graph_values(const std::shared_ptr<torch::jit::Graph>& graph, const c10::IValue& module,
                                            const torch::Tensor& input, const std::vector<const Value*>& wanted) {
  auto copy = graph->copy();
  std::unordered_map<const Value*, Value*> to_copy;
  for (std::size_t i = 0; i < graph->inputs().size(); ++i) to_copy[graph->inputs()[i]] = copy->inputs()[i];
  auto a = graph->nodes().begin();
  auto b = copy->nodes().begin();
  for (; a != graph->nodes().end(); ++a, ++b) {
    for (std::size_t i = 0; i < a->outputs().size(); ++i) to_copy[a->outputs()[i]] = b->outputs()[i];
  }
  std::vector<Value*> outputs;
  for (const Value* v : wanted) outputs.push_back(to_copy.at(v));
  while (!copy->outputs().empty()) copy->eraseOutput(0);
  Node* tuple = copy->insertNode(copy->createTuple(outputs));
  copy->registerOutput(tuple->output());
  torch::jit::GraphFunction probe("graph_probe", copy, nullptr);
  c10::IValue result = probe({module, input});
  const auto& elements = result.toTupleRef().elements();
  return std::vector<c10::IValue>(elements.begin(), elements.end());
}

}  // namespace edgefleet
