// ONNX copies of TorchScript classifiers: the format phones and Raspberry Pis run.
//
// The exporter reads the frozen forward graph (batch norms folded into convolutions, in-place
// operations made functional), evaluates every shape computation for the card's input size
// (a TF-style padding computed from the activation's size becomes its constant amounts), and
// writes each operation as ONNX opset 10 — OpenCV 4.6's DNN reads Clip and Pad only in
// their opset-10 form (bounds and amounts as attributes). The batch axis
// stays free unless the program writes its batch size. An operation without an ONNX
// counterpart here is refused by name, never approximated.
//
//   auto onnx = export_onnx(card, "m.onnx").value();      // m.onnx + m.onnx.json
//   std::cout << onnx.check.max_relative_error;            // OpenCV DNN vs TorchScript
#pragma once

#include <cstdint>
#include <string>

#include "edgefleet/model_card.h"
#include "edgefleet/status.h"

namespace edgefleet {

inline constexpr int kOnnxOpset = 10;

// Two engines on the same inputs: each input's largest |logit difference| over its largest
// |reference logit|, the worst over the inputs, and how often their top-1 classes agree.
struct LogitAgreement {
  int inputs = 0;
  double max_relative_error = 0;
  double top1_agreement = 1;
};

struct OnnxExportOptions {
  int check_inputs = 8;      // uniform random inputs in the card's range, through both engines
  double tolerance = 1e-4;   // an export whose max relative error exceeds this is refused
  std::uint64_t seed = 0;
};

struct OnnxExport {
  ModelCard card;            // the ONNX model's card, written beside it as NAME.onnx.json
  std::string card_path;
  int nodes = 0;
  bool dynamic_batch = true; // false: the program fixes its batch size, and the ONNX input too
  LogitAgreement check;      // OpenCV DNN on the export against libtorch on the source
};

// Writes `card`'s TorchScript model as ONNX at `onnx_path` (which must end in .onnx) and its
// card beside it, then runs both through their engines. Fails with unsupported naming the
// first operation that has no ONNX form here, invalid_argument for a non-TorchScript card or
// a bad path, internal_error when the export's logits differ beyond the tolerance (the file
// is then removed).
Expected<OnnxExport> export_onnx(const ModelCard& card, const std::string& onnx_path, const OnnxExportOptions& options = {});

// Both models on the same `inputs` uniform random inputs (the reference card's input shape
// and range), each through its own engine at one thread.
Expected<LogitAgreement> compare_logits(const ModelCard& reference, const ModelCard& other, int inputs, std::uint64_t seed = 0);

}  // namespace edgefleet
