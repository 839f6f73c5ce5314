#include "edgefleet/model_card.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <type_traits>

#include "core/atomic_file.h"
#include "core/data_dir.h"
#include "core/named_values.h"

namespace edgefleet {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const NamedValues<ModelFormat> kModelFormats = {{"torchscript", ModelFormat::kTorchScript}, {"onnx", ModelFormat::kOnnx}};

[[noreturn]] void fail(const std::string& origin, const std::string& what) {
  throw Error(invalid_argument(origin + ": " + what));
}

template <typename T>
T field(const json& j, const char* key, T fallback, const std::string& origin, const std::string& prefix = "") {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    // get<int>() would wrap 1e10 or 2^32, or truncate 2.5, silently.
    const bool fits = !j[key].is_number() || j[key].is_number_integer() && j[key].get<long long>() >= std::numeric_limits<T>::min() &&
                      (j[key].is_number_unsigned() ? j[key].get<unsigned long long>() <= static_cast<unsigned long long>(std::numeric_limits<T>::max())
                                                   : j[key].get<long long>() <= static_cast<long long>(std::numeric_limits<T>::max()));
    if (!fits) fail(origin, "field '" + prefix + key + "' must be a whole number that fits in " + std::to_string(sizeof(T) * 8) + " bits (" + j[key].dump() + ")");
  }
  try {
    return j[key].get<T>();
  } catch (const json::exception&) {
    fail(origin, "field '" + prefix + key + "' has the wrong type (" + j[key].dump() + ")");
  }
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A parsed name, or a failure naming the card.
template <typename T>
T named(Expected<T> value, const std::string& origin) {
  if (!value) fail(origin, value.status().message());
  return *value;
}

InputContract parse_input(const json& j, const std::string& origin) {
  if (!j.is_object()) fail(origin, "'input' must be an object");
  InputContract in;
  in.layout = field<std::string>(j, "layout", "NCHW", origin, "input.");
  if (in.layout != "NCHW") fail(origin, "input.layout '" + in.layout + "' is not supported (expected NCHW)");
  in.color = named(parse_input_color(lower(field<std::string>(j, "color", "rgb", origin, "input."))), origin);
  if (j.contains("range")) {
    const auto range = field<std::vector<float>>(j, "range", {}, origin, "input.");
    if (range.size() != 2 || !(range[0] < range[1])) fail(origin, "input.range must be [min, max] with min < max");
    in.range_min = range[0];
    in.range_max = range[1];
  }
  in.height = field<int>(j, "height", 0, origin, "input.");
  in.width = field<int>(j, "width", 0, origin, "input.");
  // Bounded so that a card cannot make every picture a gigabyte tensor (4096x4096x3 floats
  // are 200 MB already).
  if (in.height <= 0 || in.width <= 0 || in.height > kMaxInputSide || in.width > kMaxInputSide) {
    fail(origin, "input.height and input.width must be whole numbers in [1, " + std::to_string(kMaxInputSide) + "]");
  }
  in.mean = field<std::vector<float>>(j, "mean", {}, origin, "input.");
  in.std = field<std::vector<float>>(j, "std", {}, origin, "input.");
  if (in.mean.size() != in.std.size() ||
      (!in.mean.empty() && in.mean.size() != 1 && static_cast<int>(in.mean.size()) != in.channels())) {
    fail(origin, "input.mean and input.std must both have 1 or " + std::to_string(in.channels()) + " values");
  }
  for (float s : in.std) {
    if (!(s > 0)) fail(origin, "input.std values must be positive");
  }
  in.normalization_inside_model = j.contains("normalization_inside_model") && j["normalization_inside_model"].is_string()
                                      ? j["normalization_inside_model"].get<std::string>()
                                      : "";
  // Default preprocessing: ImageNet-sized inputs follow the usual convention (shorter side
  // to size/0.875, centre crop, antialiased bilinear); small inputs are resized exactly.
  const bool imagenet_like = in.height >= 64;
  in.resize = named(parse_resize_rule(field<std::string>(j, "resize", imagenet_like ? "shorter-side" : "exact", origin, "input.")), origin);
  in.resize_size = field<int>(j, "resize_size", static_cast<int>(std::lround(std::min(in.height, in.width) / 0.875)),
                              origin, "input.");
  if (in.resize_size > 2 * kMaxInputSide) {
    fail(origin, "input.resize_size " + std::to_string(in.resize_size) + " is over " + std::to_string(2 * kMaxInputSide));
  }
  if (in.resize != ResizeRule::kExact && in.resize_size < std::min(in.height, in.width)) {
    fail(origin, "input.resize_size " + std::to_string(in.resize_size) + " is smaller than the crop");
  }
  in.interpolation = named(parse_interpolation(field<std::string>(j, "interpolation", "bilinear-antialias", origin, "input.")), origin);
  return in;
}

json input_to_json(const InputContract& in) {
  json j = {{"layout", in.layout},
            {"dtype", "float32"},
            {"color", input_color_name(in.color)},
            {"range", {in.range_min, in.range_max}},
            {"height", in.height},
            {"width", in.width},
            {"resize", resize_rule_name(in.resize)},
            {"resize_size", in.resize_size},
            {"interpolation", interpolation_name(in.interpolation)}};
  if (!in.mean.empty()) {
    j["mean"] = in.mean;
    j["std"] = in.std;
  }
  if (!in.normalization_inside_model.empty()) j["normalization_inside_model"] = in.normalization_inside_model;
  return j;
}

}  // namespace

std::string model_format_name(ModelFormat format) { return name_of(kModelFormats, format); }

std::string ModelCard::model_path() const {
  if (fs::path(file).is_absolute() || card_path.empty()) return file;
  return (fs::path(card_path).parent_path() / file).lexically_normal().string();
}

Expected<ModelCard> card_from_json(const json& j, const std::string& origin) {
  return capture([&]() -> ModelCard {
    if (!j.is_object()) fail(origin, "a model card must be a JSON object");
    ModelCard card;
    card.raw = j;
    card.name = field<std::string>(j, "name", "", origin);
    if (card.name.empty()) fail(origin, "missing field 'name'");
    card.file = field<std::string>(j, "file", "", origin);
    if (card.file.empty()) fail(origin, "missing field 'file' (the model file, relative to the card)");
    const std::string ext = lower(fs::path(card.file).extension().string());
    auto format = parse_named(kModelFormats, "format", field<std::string>(j, "format", ext == ".onnx" ? "onnx" : "torchscript", origin));
    if (!format) fail(origin, format.status().message());
    card.format = *format;
    card.task = field<std::string>(j, "task", "", origin);
    card.sha256 = field<std::string>(j, "sha256", "", origin);
    if (j.contains("architecture") && j["architecture"].is_string()) card.architecture = j["architecture"];
    if (j.contains("architecture_spec")) card.architecture_spec = j["architecture_spec"];
    if (!j.contains("input")) fail(origin, "missing field 'input' (the input contract)");
    card.input = parse_input(j["input"], origin);
    card.labels = field<std::vector<std::string>>(j, "labels", {}, origin);
    int classes = card.labels.empty() ? 0 : static_cast<int>(card.labels.size());
    if (j.contains("classes")) classes = field<int>(j, "classes", 0, origin);
    if (j.contains("output") && j["output"].is_object() && j["output"].contains("classes")) {
      classes = field<int>(j["output"], "classes", 0, origin, "output.");
    }
    if (classes <= 0) fail(origin, "the number of classes is unknown (give 'classes', 'output.classes' or 'labels')");
    if (!card.labels.empty() && static_cast<int>(card.labels.size()) != classes) {
      fail(origin, std::to_string(card.labels.size()) + " labels for " + std::to_string(classes) + " classes");
    }
    card.classes = classes;
    card.params = field<std::int64_t>(j, "params", 0, origin);
    card.macs = field<std::int64_t>(j, "macs", 0, origin);
    if (j.contains("accuracy") && j["accuracy"].is_object()) {
      const json& a = j["accuracy"];
      AccuracyRecord acc;
      acc.dataset = field<std::string>(a, "dataset", "", origin, "accuracy.");
      acc.images = field<std::size_t>(a, "images", 0, origin, "accuracy.");
      acc.top1 = field<double>(a, "top1", 0.0, origin, "accuracy.");
      acc.top5 = field<double>(a, "top5", 0.0, origin, "accuracy.");
      if (acc.top1 < 0 || acc.top1 > 1 || acc.top5 < 0 || acc.top5 > 1) fail(origin, "accuracy.top1/top5 must be fractions in [0,1]");
      card.accuracy = acc;
    }
    if (j.contains("training")) card.training = j["training"];
    if (j.contains("provenance")) card.provenance = j["provenance"];
    if (j.contains("latency_ms")) card.latency_ms = j["latency_ms"];
    return card;
  });
}

json card_to_json(const ModelCard& card) {
  json j = card.raw.is_object() ? card.raw : json::object();
  j["name"] = card.name;
  if (!card.task.empty()) j["task"] = card.task;
  j["file"] = card.file;
  j["format"] = model_format_name(card.format);
  if (!card.sha256.empty()) j["sha256"] = card.sha256;
  if (!card.architecture.empty()) j["architecture"] = card.architecture;
  if (!card.architecture_spec.is_null()) j["architecture_spec"] = card.architecture_spec;
  j["input"] = input_to_json(card.input);
  j["classes"] = card.classes;
  if (!card.labels.empty()) j["labels"] = card.labels;
  j["params"] = card.params;
  j["macs"] = card.macs;
  if (card.accuracy) {
    j["accuracy"] = {{"dataset", card.accuracy->dataset},
                     {"images", card.accuracy->images},
                     {"top1", card.accuracy->top1},
                     {"top5", card.accuracy->top5}};
  }
  if (!card.training.is_null()) j["training"] = card.training;
  if (!card.provenance.is_null()) j["provenance"] = card.provenance;
  if (!card.latency_ms.is_null()) j["latency_ms"] = card.latency_ms;
  return j;
}

Expected<ModelCard> read_card(const std::string& path) {
  std::ifstream in(path);
  if (!in) return not_found("model card '" + path + "' does not exist or cannot be read");
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded()) return invalid_argument(path + ": not valid JSON");
  auto card = card_from_json(j, path);
  if (card) card->card_path = fs::absolute(path).lexically_normal().string();
  return card;
}

Status write_card(const ModelCard& card, const std::string& path) {
  const auto written = capture([&] {
    write_file_atomically(card_to_json(card).dump(1) + "\n", path);
    return true;
  });
  return written ? Status::ok() : written.status();
}

std::string builtin_zoo_dir() {
  if (const char* dir = std::getenv("EDGEFLEET_MODELS_DIR")) return dir;
  return data_dir() + "/models/fashion-mnist";
}

Expected<ModelCard> resolve_model(const std::string& model) {
  const fs::path path(model);
  const std::string ext = lower(path.extension().string());
  if (ext == ".json") return read_card(model);
  if (ext == ".pt" || ext == ".onnx" || ext == ".ts") {
    if (!fs::exists(path)) return not_found("model file '" + model + "' does not exist");
    // "net.onnx.json" describes "net.onnx" only; "net.json" is the card of any "net.*".
    const fs::path own_card = fs::path(model + ".json");
    const fs::path stem_card = fs::path(path).replace_extension(".json");
    const fs::path card_path = fs::exists(own_card) ? own_card : stem_card;
    if (!fs::exists(card_path)) {
      return not_found("model '" + model + "' has no card: expected '" + stem_card.string() +
                       "' beside it (see docs/model-cards.md)");
    }
    auto card = read_card(card_path.string());
    if (card && card->model_path() != fs::absolute(path).lexically_normal().string()) {
      // The card describes this file under another name (e.g. the ONNX copy of a .pt):
      // the file and its format win, the recorded hash no longer applies.
      card->file = path.filename().string();
      card->format = ext == ".onnx" ? ModelFormat::kOnnx : ModelFormat::kTorchScript;
      card->sha256.clear();
    }
    return card;
  }
  const std::string zoo_card = builtin_zoo_dir() + "/" + model + ".json";
  if (fs::exists(zoo_card)) return read_card(zoo_card);
  return not_found("model '" + model + "' is not a card (.json), a model file (.pt, .onnx) or a built-in zoo name (see `edgefleet zoo list`)");
}

}  // namespace edgefleet
