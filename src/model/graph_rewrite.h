// Internal: rewrites of a frozen TorchScript module's forward graph that simulate how a device
// runs the model — reduced precision and pooling ceil mode (edgefleet/inference_setting.h).
// Each takes a module fresh from torch::jit::freeze that has not run yet (the graph executor
// caches its plan at the first run). Top-level ops only: graphs with control flow keep the
// ops inside their blocks unchanged.
#pragma once

#include <torch/csrc/jit/api/module.h>

#include "edgefleet/inference_setting.h"
#include "edgefleet/status.h"

namespace edgefleet {

// Sets or flips the ceil_mode argument of every max/avg pooling op; returns how many changed.
int set_pooling_ceil_mode(torch::jit::Module& frozen, CeilMode mode);

// FP16/BF16 emulation: rounds every floating constant (weights, biases) and the output of
// every value-changing op, and the input, to `type` and back to float.
void round_to_precision(torch::jit::Module& frozen, c10::ScalarType type);

// INT8 fake quantisation (precision_method() says what is quantised). `calibrate_on` and
// `target` are two fresh frozen copies of the same model: the first measures activation
// ranges on `calibration` (a batch of model inputs), the second is rewritten.
Status fake_quantize_int8(torch::jit::Module& calibrate_on, torch::jit::Module& target, bool per_channel_weights,
                          const at::Tensor& calibration);

}  // namespace edgefleet
