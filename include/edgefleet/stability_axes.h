// Built-in one-source-at-a-time experiments (`stability run --axis NAME`): each axis varies
// one stage of a base pipeline, or one inference setting, and keeps everything else, so the
// instability among its environments is that source's share (the paper's §5-7 experiments,
// SysNoise's per-noise tables).
//
// Environments are named "AXIS/VARIANT"; the first of each axis is its baseline (accuracy
// drops are measured from it). Base pipeline: decode when the dataset holds encoded files
// (each format by its own library; the decoder axis assumes JPEG files), then OpenCV bilinear
// resize and centre crop to the model's input.
#pragma once

#include <string>
#include <vector>

#include "edgefleet/stability_run.h"

namespace edgefleet {

// jpeg-quality, format, decoder, resize, color, isp, precision, engine, ceil-mode, threads,
// sensor-noise (the same camera shot again with the noise re-drawn: same-device repeat
// instability, paper Fig. 1/3d).
std::vector<std::string> stability_axis_names();

// `encoded_source`: the dataset's items are encoded files (Dataset::load_encoded works), so
// pipelines start by decoding them; otherwise they start from pixels and axes that need a
// file (decoder) encode one first.
Expected<std::vector<StabilityEnvironment>> axis_environments(const std::string& axis, bool encoded_source);

// The axis an environment belongs to: its name up to the first '/', or "" for none.
std::string environment_source(const std::string& environment_name);

}  // namespace edgefleet
