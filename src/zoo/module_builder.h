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

// The generated source split after the first `base_layers` layers, as method bodies over the
// same tensor names: `base` maps the input to layer base_layers's input (normalisation
// included), `tail` maps that to the logits, every tensor read as self.<tail_prefix><name>.
// The caller wraps each in a def; a multi-branch model holds one base and several tails.
struct SplitSource {
  std::string base;
  std::string tail;
};
SplitSource split_source(const ArchSpec& spec, std::size_t base_layers, const std::string& tail_prefix);

// The ArchSpec stored in a module built by build_module, or not_found for other modules.
Expected<ArchSpec> arch_spec_of(const torch::jit::Module& module);

}  // namespace edgefleet
