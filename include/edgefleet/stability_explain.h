// Why did an input flip? Between two environments that disagree on it, the smallest set of
// differences (pipeline stages, the inference setting) that, applied to the first
// environment alone, changes its answer: a delta-debugging search (Zeller's ddmin) over the
// differences, each candidate environment run for real.
//
// The differences come from aligning the two pipelines stage by stage (longest common
// subsequence of stage kinds): a stage of the same kind with other options is a substitution,
// a stage only in the first a removal, one only in the second an insertion; a different
// inference setting is one more difference. The result is 1-minimal: removing any one
// difference from it no longer flips the answer (not necessarily the smallest of all).
//
// For a TorchScript model, the two environments' model inputs are also compared inside the
// model, layer by layer (activation_divergence.h): where the two pictures part.
//
//   auto why = explain_flip(card, data, index, from, to).value();
//   for (int c : why.culprit) std::cout << why.changes[c] << "\n";
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "edgefleet/activation_divergence.h"
#include "edgefleet/dataset.h"
#include "edgefleet/model_card.h"
#include "edgefleet/stability_run.h"
#include "edgefleet/status.h"

namespace edgefleet {

struct ExplainCandidate {
  std::vector<int> applied;  // indices into Explanation::changes
  std::string spec;          // the environment tried
  int top1 = -1;             // -1 when the environment failed on the input
  float probability = 0.0f;  // of top1
  std::string error;
};

struct Explanation {
  std::string input;
  std::string from, to;      // environment names
  int from_top1 = -1, to_top1 = -1;
  std::vector<std::string> changes;          // every difference, from `from` towards `to`
  std::vector<int> culprit;                  // a 1-minimal set of them that flips from's answer
  std::vector<ExplainCandidate> evaluated;   // every environment tried, in order
  // `from`'s and `to`'s model inputs through the model (FP32), layer by layer; empty layers
  // with the reason in activations_error when the model's layers cannot be read (ONNX).
  ActivationDivergence activations;
  std::string activations_error;
};

// invalid_argument when the two environments agree on the input (nothing to explain) or one
// of them fails on it. `calibration` is what INT8 settings calibrate on (calibration_inputs()).
Expected<Explanation> explain_flip(const ModelCard& card, const Dataset& data, std::size_t index,
                                   const StabilityEnvironment& from, const StabilityEnvironment& to,
                                   const std::vector<float>& calibration = {});

nlohmann::json explanation_to_json(const Explanation& explanation);

}  // namespace edgefleet
