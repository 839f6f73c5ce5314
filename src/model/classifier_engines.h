// Internal: the engine-specific loaders behind load_classifier().
#pragma once

#include "edgefleet/classifier.h"

namespace edgefleet {

Expected<std::unique_ptr<Classifier>> load_torchscript_classifier(const ModelCard& card, const LoadOptions& options);
Expected<std::unique_ptr<Classifier>> load_onnx_classifier(const ModelCard& card, const LoadOptions& options);

}  // namespace edgefleet
