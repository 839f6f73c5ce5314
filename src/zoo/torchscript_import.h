// Internal: turns a plain TorchScript classifier (no ArchSpec, e.g. the ImageNet models in
// ../shared/imagenet) into an edgefleet zoo module with the same outputs, so that the cost
// model, channel groups and structured pruning apply to it.
//
// The structure is read from the TorchScript graph: forward methods are walked call by call
// down to recognised modules (Conv2d, BatchNorm2d, ReLU/ReLU6/LeakyReLU/Hardtanh,
// MaxPool2d, Dropout, Linear, conv-bn-activation composites with `conv` and `bn` children,
// input normalisation with scale/shift or mean/std tensors) and the ops aten::mean,
// aten::flatten, aten::relu between them. Anything else (concatenation, additions, ...) is
// refused with the operation and the module it is in. The import is checked: the new module
// must give the same logits as the source on random inputs.
#pragma once

#include <torch/script.h>

#include "edgefleet/architecture.h"
#include "edgefleet/status.h"

namespace edgefleet {

struct ImportedModel {
  ArchSpec spec;
  torch::jit::Module module;  // built by build_module(spec), the source's weights copied in
  double max_logit_difference = 0.0;  // measured by the check
};

// `input_size`: the square input the source expects (the card's contract); "same" padding
// is computed for it. Fails with unsupported (naming the operation) or invalid_argument.
Expected<ImportedModel> import_sequential_classifier(const torch::jit::Module& source, int input_size);

}  // namespace edgefleet
