// ModelCard: the JSON that travels with every model file — architecture, input contract,
// labels, params/MACs, accuracy, training recipe, provenance and the file's sha256.
// Value type; thread-safe to share read-only. Unknown JSON fields are kept on round trip.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "edgefleet/status.h"

namespace edgefleet {

// The largest input side a card may declare.
constexpr int kMaxInputSide = 4096;

// How to turn a decoded image into the model's input tensor.
struct InputContract {
  std::string layout = "NCHW";
  std::string color = "rgb";  // gray | rgb | bgr
  float range_min = 0.0f;     // pixel 0 maps to range_min, 255 to range_max
  float range_max = 1.0f;
  int height = 0;
  int width = 0;
  std::vector<float> mean;  // per channel, applied outside the model after range scaling; empty = none
  std::vector<float> std;
  std::string resize = "exact";  // exact (to height x width) | shorter-side (then centre crop) | squash (then crop)
  int resize_size = 0;           // shorter-side / squash target before the crop
  std::string interpolation = "bilinear-antialias";  // bilinear-antialias | bilinear | area | nearest | bicubic
  std::string normalization_inside_model;            // what the model does itself (text)

  int channels() const { return color == "gray" ? 1 : 3; }
};

struct AccuracyRecord {
  std::string dataset;
  std::size_t images = 0;
  double top1 = 0.0;
  double top5 = 0.0;
};

struct ModelCard {
  std::string name;
  std::string task;
  std::string file;    // model file, relative to the card's folder
  std::string format;  // torchscript | onnx
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
