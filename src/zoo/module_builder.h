// Internal: turns an ArchSpec into a trainable TorchScript module (torch::jit::Module) whose
// forward is generated TorchScript source over flat, named parameters. The module carries
// its spec as the string attribute `arch_json`, so a saved .pt is self-describing.
#pragma once

#include <torch/script.h>

#include "edgefleet/architecture.h"

namespace edgefleet {

// A freshly initialised module (Kaiming-normal convs, unit BN, seeded). Methods:
// forward(x) -> logits, features(x) -> embedding (the classifier's input).
torch::jit::Module build_module(const ArchSpec& spec, std::uint64_t seed);

// The TorchScript source build_module generates for `spec` (for inspection and tests).
std::string generated_source(const ArchSpec& spec);

// The ArchSpec stored in a module built by build_module, or not_found for other modules.
Expected<ArchSpec> arch_spec_of(const torch::jit::Module& module);

}  // namespace edgefleet
