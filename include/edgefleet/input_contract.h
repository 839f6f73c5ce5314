// InputContract: how a decoded picture becomes a model's input tensor (colour, range, size,
// resize rule, normalisation). Part of a model card (edgefleet/model_card.h); the imaging
// layer binds pipelines to it (edgefleet/pipeline.h) without knowing about cards.
#pragma once

#include <string>
#include <vector>

#include "edgefleet/status.h"

namespace edgefleet {

enum class InputColor { kGray, kRgb, kBgr };
// exact: to height x width; shorter-side: the shorter side to resize_size, then a centre crop;
// squash: to resize_size x resize_size, then a centre crop.
enum class ResizeRule { kExact, kShorterSide, kSquash };
// bilinear-antialias is PIL's convention (through libtorch); the others are OpenCV's filters.
enum class Interpolation { kBilinearAntialias, kBilinear, kArea, kNearest, kBicubic };

// The names cards write: gray | rgb | bgr; exact | shorter-side | squash; bilinear-antialias |
// bilinear | area | nearest | bicubic. Parse errors name the field and the allowed values.
Expected<InputColor> parse_input_color(const std::string& name);
std::string input_color_name(InputColor color);
Expected<ResizeRule> parse_resize_rule(const std::string& name);
std::string resize_rule_name(ResizeRule rule);
Expected<Interpolation> parse_interpolation(const std::string& name);
std::string interpolation_name(Interpolation interpolation);

// The largest input side a card may declare.
constexpr int kMaxInputSide = 4096;

// How to turn a decoded image into the model's input tensor.
struct InputContract {
  std::string layout = "NCHW";
  InputColor color = InputColor::kRgb;
  float range_min = 0.0f;     // pixel 0 maps to range_min, 255 to range_max
  float range_max = 1.0f;
  int height = 0;
  int width = 0;
  std::vector<float> mean;  // per channel, applied outside the model after range scaling; empty = none
  std::vector<float> std;
  ResizeRule resize = ResizeRule::kExact;
  int resize_size = 0;  // shorter-side / squash target before the crop
  Interpolation interpolation = Interpolation::kBilinearAntialias;
  std::string normalization_inside_model;            // what the model does itself (text)

  int channels() const { return color == InputColor::kGray ? 1 : 3; }
};

}  // namespace edgefleet
