// Preprocessing: a decoded Image to the float input a model's card asks for (colour,
// resize/crop convention, interpolation, range, mean/std). The reference path every later
// device pipeline is compared with. Thread-safe (no shared state).
#pragma once

#include <vector>

#include "edgefleet/image.h"
#include "edgefleet/model_card.h"

namespace edgefleet {

// Returns channels*height*width floats in CHW order. Fails with invalid_argument for an
// empty image or an unsupported channel count.
Expected<std::vector<float>> preprocess(const Image& image, const InputContract& contract);

// For an image a device pipeline already brought to the model's width x height: only the
// colour, range and mean/std steps (the card's own resize would re-scale it). Other sizes go
// through preprocess().
Expected<std::vector<float>> to_model_input(const Image& image, const InputContract& contract);

// The geometric part alone: colour-converted, resized and cropped 8-bit image.
Expected<Image> preprocess_geometry(const Image& image, const InputContract& contract);

}  // namespace edgefleet
