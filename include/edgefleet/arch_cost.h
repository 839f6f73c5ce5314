// ArchCost: what an ArchSpec costs, layer by layer (multiply-accumulates, parameters,
// activation memory), and its estimated latency on a device's hardware. Computed from the
// spec alone, without building the model; the porting cost model. Pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "edgefleet/architecture.h"
#include "edgefleet/device_profile.h"

namespace edgefleet {

struct LayerCost {
  std::string name;                  // the conv or linear layer, e.g. "l3_dw", "fc"
  std::int64_t macs = 0;             // C_in/groups * C_out * k^2 * H_out * W_out
  std::int64_t params = 0;           // weights + biases + batch-norm scale and shift
  std::int64_t input_elements = 0;   // read
  std::int64_t output_elements = 0;  // written
};

struct ArchCost {
  std::vector<LayerCost> layers;
  std::int64_t macs = 0;
  std::int64_t params = 0;
  // Peak bytes of FP32 activations alive at once (a layer's input and output plus a
  // residual block's saved input).
  std::int64_t peak_activation_bytes = 0;

  // Weights plus peak activations, in MB (10^6 bytes): what the model needs in memory.
  double memory_mb() const { return static_cast<double>(4 * params + peak_activation_bytes) / 1e6; }
};

ArchCost arch_cost(const ArchSpec& spec);

enum class LatencyModel {
  kSum,       // per layer: bytes / bandwidth + FLOPs / peak (the Mistify paper's model)
  kRoofline,  // per layer: the larger of the two
};

// Estimated batch-1 latency in ms of `cost` on `hardware` (FP32: 4 bytes per element,
// 2 FLOPs per MAC). Fails with invalid_argument when the hardware lacks peak or bandwidth.
Expected<double> estimated_latency_ms(const ArchCost& cost, const Hardware& hardware, LatencyModel model = LatencyModel::kSum);

}  // namespace edgefleet
