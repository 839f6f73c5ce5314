#include "edgefleet/stability_axes.h"

#include <utility>

namespace edgefleet {
namespace {

const char* kGeometry = "resize:opencv,linear,model|crop:center,model";

// (variant, spec) pairs of one axis, baseline first.
using Variants = std::vector<std::pair<std::string, std::string>>;

Variants variants_of(const std::string& axis, bool encoded_source) {
  const std::string geometry = kGeometry;
  const std::string source = encoded_source ? "decode:auto|" : "";
  // A file to decode: the dataset's own, or a high-quality JPEG of its pixels.
  const std::string file = encoded_source ? "" : "encode:jpeg,quality=95|";
  Variants v;
  if (axis == "jpeg-quality") {  // paper §5.1: 100, 85, 50
    for (const char* q : {"100", "85", "50"}) {
      v.push_back({std::string("q") + q, source + "encode:jpeg,quality=" + q + "|decode:auto|" + geometry});
    }
  } else if (axis == "format") {  // paper §5.2: each format at its default parameters
    for (const char* format : {"jpeg", "png", "webp", "heif"}) {
      v.push_back({format, source + "encode:" + format + "|decode:auto|" + geometry});
    }
  } else if (axis == "decoder") {  // paper §7 (OS JPEG decoders), SysNoise decoder noise
    for (const auto& [name, decode] : Variants{{"libjpeg-turbo", "decode:turbojpeg"},
                                               {"ifast-dct", "decode:turbojpeg,dct=ifast"},
                                               {"float-dct", "decode:turbojpeg,dct=float"},
                                               {"simple-upsampling", "decode:turbojpeg,upsampling=simple"},
                                               {"opencv", "decode:opencv"},
                                               {"imagemagick", "decode:magick"},
                                               {"libvips", "decode:vips"}}) {
      v.push_back({name, file + decode + "|" + geometry});
    }
  } else if (axis == "resize") {  // SysNoise resize noise
    for (const auto& [name, resize] : Variants{{"opencv-linear", "opencv,linear"},
                                               {"opencv-nearest", "opencv,nearest"},
                                               {"opencv-cubic", "opencv,cubic"},
                                               {"opencv-area", "opencv,area"},
                                               {"opencv-lanczos4", "opencv,lanczos4"},
                                               {"vips-linear", "vips,linear"},
                                               {"magick-triangle", "magick,triangle"},
                                               {"torch-bilinear-antialias", "torch,bilinear,model,antialias=1"}}) {
      std::string stage = "resize:" + std::string(resize);
      if (stage.find(",model") == std::string::npos) stage += ",model";
      v.push_back({name, source + stage + "|crop:center,model"});
    }
  } else if (axis == "color") {  // SysNoise colour-conversion noise: an RGB -> Y'CbCr -> RGB round trip
    v.push_back({"rgb", source + geometry});
    for (const auto& [name, color] : Variants{{"bt601-full", "bt601,full"},
                                              {"bt601-limited", "bt601,limited"},
                                              {"bt709-limited", "bt709,limited"},
                                              {"bt709-limited-420", "bt709,limited,chroma=420"},
                                              {"bt601-full-float", "bt601,full,rounding=float"}}) {
      v.push_back({name, source + "color:" + color + "|" + geometry});
    }
  } else if (axis == "isp") {  // paper §6: software ISPs on the same raw capture
    for (const auto& [name, camera] : Variants{{"opencv-bilinear", "opencv"},
                                               {"opencv-vng", "opencv,demosaic=vng"},
                                               {"opencv-ea", "opencv,demosaic=ea"},
                                               {"opencv-grayworld", "opencv,wb=grayworld"},
                                               {"libraw-ahd", "libraw,demosaic=ahd"},
                                               {"libraw-dcb", "libraw,demosaic=dcb"}}) {
      v.push_back({name, source + "camera:" + camera + "|" + geometry});
    }
  } else if (axis == "sensor-noise") {  // the same shot re-taken: only the noise draw changes
    for (int seed = 1; seed <= 5; ++seed) {
      v.push_back({"shot-" + std::to_string(seed),
                   source + "camera:opencv,shot=0.0008,read=0.00002,seed=" + std::to_string(seed) + "|" + geometry});
    }
  } else if (axis == "precision") {
    for (const char* precision : {"fp32", "bf16", "fp16", "int8-tensor", "int8-channel"}) {
      v.push_back({precision, source + geometry + "|infer:precision=" + precision});
    }
  } else if (axis == "engine") {
    v.push_back({"libtorch", source + geometry});
    v.push_back({"opencv-dnn", source + geometry + "|infer:engine=opencv-dnn"});
  } else if (axis == "ceil-mode") {  // SysNoise: pooling ceil mode of the deployment differs
    v.push_back({"as-trained", source + geometry});
    v.push_back({"flipped", source + geometry + "|infer:ceil=flip"});
  } else if (axis == "threads") {
    v.push_back({"threads-1", source + geometry + "|infer:threads=1"});
    v.push_back({"threads-2", source + geometry + "|infer:threads=2"});
  }
  return v;
}

}  // namespace

std::vector<std::string> stability_axis_names() {
  return {"jpeg-quality", "format", "decoder", "resize", "color", "isp", "sensor-noise",
          "precision", "engine", "ceil-mode", "threads"};
}

Expected<std::vector<StabilityEnvironment>> axis_environments(const std::string& axis, bool encoded_source) {
  const Variants variants = variants_of(axis, encoded_source);
  if (variants.empty()) {
    std::string names;
    for (const auto& n : stability_axis_names()) names += (names.empty() ? "" : ", ") + n;
    return invalid_argument("axis '" + axis + "' is not one of: " + names);
  }
  std::vector<StabilityEnvironment> out;
  for (const auto& [variant, spec] : variants) {
    auto environment = parse_environment(axis + "/" + variant, spec);
    if (!environment) return environment.status();
    out.push_back(std::move(*environment));
  }
  return out;
}

std::string environment_source(const std::string& environment_name) {
  const auto slash = environment_name.find('/');
  return slash == std::string::npos ? "" : environment_name.substr(0, slash);
}

}  // namespace edgefleet
