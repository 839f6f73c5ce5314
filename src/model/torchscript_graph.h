// Internal: reading a TorchScript model and its forward graph — loading it, where a node came from, the constants its
// inputs hold, and a probe run that returns the values of chosen top-level graph values.
// Shared by the channel analysis (port) and the ONNX exporter (model).
#pragma once

#include <torch/script.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "edgefleet/model_card.h"
#include "edgefleet/status.h"

namespace edgefleet {

// The card's TorchScript module in eval mode. Throws Error(corrupt) naming `who` (the
// operation, e.g. "onnx export") when the file is not a loadable TorchScript model.
torch::jit::Module load_torchscript_module(const ModelCard& card, const std::string& who);

// "aten::pad (models.py:131)": the operation and, when the graph kept it, its source line.
std::string graph_node_location(const torch::jit::Node* node);

std::optional<c10::IValue> graph_constant(const torch::jit::Value* v);
std::optional<std::int64_t> graph_constant_int(const torch::jit::Value* v);
// An int list written as a constant or as a ListConstruct of constant ints (a lone int reads
// as a one-element list, as the ops that take `int[2]` accept).
std::optional<std::vector<std::int64_t>> graph_constant_ints(const torch::jit::Value* v);
bool graph_value_is_none(const torch::jit::Value* v);

// Runs `graph` (a method's graph: input 0 is the module, input 1 the tensor) on `input` and
// returns the values that `wanted` (top-level values of `graph`) take, in order. The graph is
// not modified. Throws what the run throws.
std::vector<c10::IValue> probe_graph_values(const std::shared_ptr<torch::jit::Graph>& graph, const c10::IValue& module,
                                            const torch::Tensor& input, const std::vector<const torch::jit::Value*>& wanted);

}  // namespace edgefleet
