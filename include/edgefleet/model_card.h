// ModelCard: the JSON that travels with every model file — architecture, input contract,
// labels, params/MACs, accuracy, training recipe, provenance and the file's sha256.
// Value type; thread-safe to share read-only. Unknown JSON fields are kept on round trip.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "edgefleet/input_contract.h"
#include "edgefleet/status.h"

namespace edgefleet {

struct AccuracyRecord {
  std::string dataset;
  std::size_t images = 0;
  double top1 = 0.0;
  double top5 = 0.0;
};

// What runs the model file: libtorch (TorchScript) or OpenCV DNN (ONNX).
enum class ModelFormat { kTorchScript, kOnnx };
std::string model_format_name(ModelFormat format);  // torchscript | onnx

struct ModelCard {
  std::string name;
  std::string task;
  std::string file;    // model file, relative to the card's folder
  ModelFormat format = ModelFormat::kTorchScript;
  std::string sha256;  // of the model file; empty = not checked
  std::string architecture;
  nlohmann::json architecture_spec;  // the zoo's ArchSpec as JSON, when built by edgefleet
  InputContract input;
  int classes = 0;
  std::vector<std::string> labels;  // class names in output order; may be empty
  std::int64_t params = 0;
  std::int64_t macs = 0;
  std::optional<AccuracyRecord> accuracy;
  nlohmann::json training;    // the recipe that produced the weights
  nlohmann::json provenance;  // where the weights came from
  nlohmann::json latency_ms;  // measured latency per image, by setting
  nlohmann::json raw;         // the card as read, including fields this version does not know

  std::string card_path;  // where it was read from (not serialised)
  // The model file's absolute location: `file` resolved against the card's folder.
  std::string model_path() const;
};

// Parses a card; fails with invalid_argument naming the missing or malformed field.
Expected<ModelCard> card_from_json(const nlohmann::json& j, const std::string& origin);
nlohmann::json card_to_json(const ModelCard& card);

Expected<ModelCard> read_card(const std::string& path);
// Writes atomically (temp file + rename), so an interrupted write never leaves half a card.
Status write_card(const ModelCard& card, const std::string& path);

// Finds the card for what a user typed after --model: a card path (.json), a model file
// (.pt / .onnx, its card is the .json beside it), or a built-in zoo name. Fails with
// not_found naming what was tried.
Expected<ModelCard> resolve_model(const std::string& model);

// The folder of the built-in zoo (models/fashion-mnist in the source tree, or
// $EDGEFLEET_MODELS_DIR).
std::string builtin_zoo_dir();

}  // namespace edgefleet
