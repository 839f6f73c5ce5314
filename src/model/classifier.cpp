#include <filesystem>

#include "model/classifier_engines.h"
#include "edgefleet/sha256.h"

namespace edgefleet {

Expected<std::unique_ptr<Classifier>> load_classifier(const ModelCard& card, const LoadOptions& options) {
  const std::string path = card.model_path();
  if (!std::filesystem::exists(path)) return not_found("model file '" + path + "' (named by card '" + card.name + "') does not exist");
  if (options.verify_sha256 && !card.sha256.empty()) {
    auto hash = sha256_file(path);
    if (!hash) return hash.status();
    if (*hash != card.sha256) {
      return corrupt(path + ": sha256 " + hash->substr(0, 12) + "... differs from the card's " + card.sha256.substr(0, 12) +
                     "... (file changed or corrupted since the card was written)");
    }
  }
  if (card.format == ModelFormat::kOnnx) return load_onnx_classifier(card, options);
  return load_torchscript_classifier(card, options);
}

}  // namespace edgefleet
