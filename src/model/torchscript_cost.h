// Internal: parameters and multiply-accumulates of a TorchScript module, counted from the
// module itself by tracing one forward pass and reading the shapes of its conv/linear/matmul
// nodes. Works for any TorchScript classifier, not only edgefleet's own.
#pragma once

#include <torch/script.h>

#include "edgefleet/classifier.h"

namespace edgefleet {

// `input_shape` is the NCHW shape of one input batch (N is usually 1).
Expected<ModelCost> torchscript_cost(torch::jit::Module& module, const std::vector<std::int64_t>& input_shape);

}  // namespace edgefleet
