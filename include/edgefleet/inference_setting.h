// Inference settings: what a device changes between the model input and the answer, besides
// its image pipeline — numeric precision, pooling ceil mode, threads and engine. Each is an
// instability source (SysNoise's "model inference" noise).
//
// Spec form (the `infer:` stage of an environment, defaults left out):
//   precision=fp32|bf16|fp16|int8|int8-channel|int8-tensor, ceil=model|on|off|flip,
//   threads=N (0 = the run's default), engine=libtorch|opencv-dnn
//
//   auto setting = parse_inference_setting("precision=fp16,threads=1").value();
#pragma once

#include <string>

#include "edgefleet/status.h"

namespace edgefleet {

// Reduced precisions are simulated on the frozen FP32 graph (CPUs here have no FP16/INT8
// kernels for every op): see precision_method() for what each does.
enum class Precision { kFp32, kBf16, kFp16, kInt8PerChannel, kInt8PerTensor };

// INT8 needs calibration inputs (a held-out set) to measure activation ranges.
inline bool is_int8(Precision p) { return p == Precision::kInt8PerChannel || p == Precision::kInt8PerTensor; }

enum class CeilMode { kAsSaved, kOn, kOff, kFlip };  // of every max/avg pooling layer

enum class Engine { kLibtorch, kOpencvDnn };  // OpenCV DNN runs the model's ONNX copy

struct InferenceSetting {
  Precision precision = Precision::kFp32;
  CeilMode ceil_mode = CeilMode::kAsSaved;
  int threads = 0;
  Engine engine = Engine::kLibtorch;

  bool operator==(const InferenceSetting& o) const {
    return precision == o.precision && ceil_mode == o.ceil_mode && threads == o.threads && engine == o.engine;
  }
  bool operator!=(const InferenceSetting& o) const { return !(*this == o); }
  bool operator<(const InferenceSetting& o) const;
};

// Comma-separated key=value options; errors name the key and the allowed values.
Expected<InferenceSetting> parse_inference_setting(const std::string& options);
// Refuses combinations no engine runs (opencv-dnn with a changed precision or ceil mode).
Status check_inference_setting(const InferenceSetting& setting);
// Canonical form, defaults left out ("" for the default setting).
std::string inference_setting_to_string(const InferenceSetting& setting);

// "int8" is INT8 with per-channel weights, the common deployment choice (TFLite, CMSIS-NN).
Expected<Precision> parse_precision(const std::string& name);
std::string precision_name(Precision precision);
// One sentence on how the precision is simulated, for reports.
std::string precision_method(Precision precision);
Expected<Engine> parse_engine(const std::string& name);
std::string engine_name(Engine engine);

}  // namespace edgefleet
