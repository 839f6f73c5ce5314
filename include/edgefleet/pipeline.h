// Pipeline: the ordered stages one device applies to a picture before the model sees it,
// written as a one-line spec or the equivalent JSON, e.g.
//   decode:turbojpeg,dct=ifast|resize:opencv,linear,256|crop:center,224|color:bt709,limited
//
// Stages (positional values first, then key=value options, in any order):
//   screen:           the picture shown on a screen and photographed (misregistration, defocus,
//                     exposure): scale=, shift=, rotate=, keystone=, blur=, exposure=, seed=
//   camera:ISP        ISP = opencv | libraw; bayer=, sensor=0..3, demosaic=, wb=true|grayworld|none,
//                     ccm=0|1, gamma=srgb|bt709, tone=0|1, denoise=, sharpen=, shot=, read= (or
//                     nlf=IP|GP|S6|N6|G4 with iso=N: a measured phone's noise), photosites=,
//                     fill=, oversample= (the sensor's resolution: noise averaged over it,
//                     demosaiced at up to `oversample` photosites per pixel), red_gain=,
//                     blue_gain=, seed=
//   encode:FORMAT     FORMAT = jpeg | png | webp | heif; quality=, subsampling=444|422|420,
//                     dct=islow|ifast|float, lossless=0|1
//   decode:LIBRARY    LIBRARY = auto | turbojpeg | opencv | magick | vips | libpng | libwebp |
//                     libheif | libraw (camera raw files); dct=islow|ifast|float, upsampling=fancy|simple,
//                     orientation=apply|ignore
//   resize:LIBRARY,METHOD,SIZE   SIZE = N (shorter side) | WxH (exact) | model; antialias=0|1
//   crop:center,SIZE  SIZE = N | WxH | a fraction in (0,1) | model
//
// SIZE "model" stands for the size the model's card asks for (device profiles use it: the
// device's resizer, the model's geometry); bind_to_input() fills it in.
//   color:MATRIX,RANGE  MATRIX = bt601 | bt709, RANGE = full | limited;
//                     chroma=444|422|420, rounding=uint8|float, order=rgb|bgr
//
// What flows between stages is encoded bytes or pixels. A stage that needs pixels and gets
// bytes (the source file, or the output of encode) decodes them first as decode:auto would;
// encode needs pixels. Two pipelines whose first k canonical stage strings are equal share
// the work of those k stages. Thread-safe (value types, no shared state).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "edgefleet/camera.h"
#include "edgefleet/color_conversion.h"
#include "edgefleet/decode.h"
#include "edgefleet/encode.h"
#include "edgefleet/input_contract.h"
#include "edgefleet/resize.h"
#include "edgefleet/screen_capture.h"

namespace edgefleet {

struct ScreenStage { ScreenCaptureOptions options; };
struct CameraStage { CameraOptions options; };
struct EncodeStage { EncodeOptions options; };
struct DecodeStage { DecodeOptions options; };
struct ResizeStage { ResizeOptions options; };
struct CropStage { CropOptions options; };
struct ColorStage { ColorConversionOptions options; };

using Stage = std::variant<ScreenStage, CameraStage, EncodeStage, DecodeStage, ResizeStage, CropStage, ColorStage>;

struct Pipeline {
  std::vector<Stage> stages;
};

// Parse errors (invalid_argument) name the offending token and list the allowed values.
Expected<Pipeline> parse_pipeline(const std::string& spec);
Expected<Stage> parse_stage(const std::string& spec);
// Accepts a JSON array of stage objects ({"stage": "resize", "library": "opencv", ...}) or a
// spec string.
Expected<Pipeline> pipeline_from_json(const nlohmann::json& json);

// Replaces "model" sizes with the contract's: resize to its shorter side (shorter-side), its
// square (squash) or its exact size (exact); crop to its width x height.
Pipeline bind_to_input(const Pipeline& pipeline, const InputContract& contract);

// A device's pipeline in two parts (the instability paper varies the first and keeps the
// second): the capture — what the phone's camera app makes of the scene, up to the file it
// writes (every stage up to and including the first encode; without an encode, the leading
// screen and camera stages) — and the deployment: what the app running the model does with
// that file (decode, resize, crop, colour conversion).
struct PipelineParts {
  Pipeline capture;
  Pipeline deployment;
};
PipelineParts split_capture(const Pipeline& pipeline);
Pipeline concatenate(const Pipeline& first, const Pipeline& second);

// Canonical forms: options at their defaults are left out, so equal pipelines print equally.
std::string stage_to_string(const Stage& stage);
std::string pipeline_to_string(const Pipeline& pipeline);
nlohmann::json pipeline_to_json(const Pipeline& pipeline);

// The data between stages: encoded bytes (with the format they are in) or pixels.
struct Payload {
  std::vector<std::uint8_t> bytes;
  std::optional<Image> image;
  bool has_pixels() const { return image.has_value(); }
};

// Applies one stage. `origin` names the picture in error messages.
Expected<Payload> apply_stage(const Stage& stage, Payload payload, const std::string& origin,
                              const DecodeLimits& limits = {});

// Runs every stage on the source file's bytes and returns the pixels at the end.
Expected<Image> run_pipeline(const Pipeline& pipeline, std::vector<std::uint8_t> source_bytes,
                             const std::string& origin, const DecodeLimits& limits = {});
// Runs every stage on already-decoded pixels.
Expected<Image> run_pipeline(const Pipeline& pipeline, const Image& source, const std::string& origin);

}  // namespace edgefleet
