// Precompiled header for the library: libtorch and OpenCV headers are the slow part of every build.
#pragma once
#include <torch/script.h>
#include <torch/torch.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <nlohmann/json.hpp>
