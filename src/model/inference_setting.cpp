#include "edgefleet/inference_setting.h"

#include "core/named_values.h"

#include <sstream>
#include <tuple>
#include <utility>
#include <vector>

namespace edgefleet {
namespace {

const NamedValues<Precision> kPrecisions = {
    {"fp32", Precision::kFp32},
    {"bf16", Precision::kBf16},
    {"fp16", Precision::kFp16},
    {"int8-channel", Precision::kInt8PerChannel},
    {"int8-tensor", Precision::kInt8PerTensor},
};
const NamedValues<CeilMode> kCeilModes = {
    {"model", CeilMode::kAsSaved}, {"on", CeilMode::kOn}, {"off", CeilMode::kOff}, {"flip", CeilMode::kFlip}};
const NamedValues<Engine> kEngines = {{"libtorch", Engine::kLibtorch}, {"opencv-dnn", Engine::kOpencvDnn}};

template <typename T>
Expected<T> lookup(const NamedValues<T>& table, const std::string& key, const std::string& value) {
  return parse_named(table, "infer: " + key, value);
}

std::string trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(" \t") - begin + 1);
}

}  // namespace

bool InferenceSetting::operator<(const InferenceSetting& o) const {
  return std::tie(precision, ceil_mode, threads, engine) < std::tie(o.precision, o.ceil_mode, o.threads, o.engine);
}

Expected<Precision> parse_precision(const std::string& name) {
  if (name == "int8") return Precision::kInt8PerChannel;
  auto precision = lookup(kPrecisions, "precision", name);
  if (!precision) return invalid_argument(precision.status().message() + ", int8");
  return precision;
}

Expected<Engine> parse_engine(const std::string& name) { return lookup(kEngines, "engine", name); }

std::string precision_name(Precision precision) { return name_of(kPrecisions, precision); }
std::string engine_name(Engine engine) { return name_of(kEngines, engine); }

std::string precision_method(Precision precision) {
  switch (precision) {
    case Precision::kFp32:
      return "FP32 as saved (frozen graph)";
    case Precision::kBf16:
    case Precision::kFp16:
      return precision_name(precision) +
             " emulated: weights and every layer's output (and the input) rounded to " + precision_name(precision) +
             ", arithmetic inside a layer in FP32";
    case Precision::kInt8PerChannel:
    case Precision::kInt8PerTensor:
      return std::string("INT8 fake-quantised: conv/linear weights symmetric per-") +
             (precision == Precision::kInt8PerChannel ? "channel" : "tensor") +
             " [-127, 127], activations (input and every layer's output, activation functions fused) asymmetric "
             "uint8 per tensor from min/max calibration on a held-out set, biases in FP32";
  }
  return "?";
}

Expected<InferenceSetting> parse_inference_setting(const std::string& options) {
  InferenceSetting setting;
  std::istringstream stream(options);
  std::string token;
  while (std::getline(stream, token, ',')) {
    token = trim(token);
    if (token.empty()) continue;
    const auto eq = token.find('=');
    if (eq == std::string::npos) {
      return invalid_argument("infer: '" + token + "' is not key=value (keys: precision, ceil, threads, engine)");
    }
    const std::string key = trim(token.substr(0, eq));
    const std::string value = trim(token.substr(eq + 1));
    if (key == "precision") {
      auto precision = parse_precision(value);
      if (!precision) return precision.status();
      setting.precision = *precision;
    } else if (key == "ceil") {
      auto mode = lookup(kCeilModes, key, value);
      if (!mode) return mode.status();
      setting.ceil_mode = *mode;
    } else if (key == "engine") {
      auto engine = parse_engine(value);
      if (!engine) return engine.status();
      setting.engine = *engine;
    } else if (key == "threads") {
      std::size_t used = 0;
      int threads = -1;
      try {
        threads = std::stoi(value, &used);
      } catch (const std::exception&) {
      }
      if (used != value.size() || threads < 0 || threads > 1024) {
        return invalid_argument("infer: threads '" + value + "' is not a whole number in [0, 1024]");
      }
      setting.threads = threads;
    } else {
      return invalid_argument("infer: unknown option '" + key + "' (keys: precision, ceil, threads, engine)");
    }
  }
  const Status valid = check_inference_setting(setting);
  if (!valid.is_ok()) return valid;
  return setting;
}

Status check_inference_setting(const InferenceSetting& setting) {
  if (setting.engine == Engine::kOpencvDnn && (setting.precision != Precision::kFp32 || setting.ceil_mode != CeilMode::kAsSaved)) {
    return invalid_argument("infer: engine opencv-dnn runs the ONNX copy as exported: precision and ceil cannot be changed");
  }
  return Status::ok();
}

std::string inference_setting_to_string(const InferenceSetting& setting) {
  std::vector<std::string> parts;
  if (setting.precision != Precision::kFp32) parts.push_back("precision=" + precision_name(setting.precision));
  if (setting.ceil_mode != CeilMode::kAsSaved) parts.push_back("ceil=" + name_of(kCeilModes, setting.ceil_mode));
  if (setting.threads != 0) parts.push_back("threads=" + std::to_string(setting.threads));
  if (setting.engine != Engine::kLibtorch) parts.push_back("engine=" + engine_name(setting.engine));
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ",") + p;
  return out;
}

}  // namespace edgefleet
