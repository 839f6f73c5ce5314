// InputContract: how a decoded picture becomes a model's input tensor (colour, range, size,
// resize rule, normalisation). Part of a model card (edgefleet/model_card.h); the imaging
// layer binds pipelines to it (edgefleet/pipeline.h) without knowing about cards.
#pragma once

#include <string>
#include <vector>

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

}  // namespace edgefleet
