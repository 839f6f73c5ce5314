// Internal: the sensor model the virtual camera unprocesses to, and the ISP steps the OpenCV
// and LibRaw ISPs share.
#pragma once

#include <opencv2/core.hpp>

#include "edgefleet/camera.h"

namespace edgefleet::detail {

// The sRGB transfer function and its inverse, on [0, 1].
double srgb_to_linear(double v);
double linear_to_srgb(double v);

// Linear sRGB -> CIE XYZ (D65).
cv::Matx33d srgb_to_xyz();

// sRGB (linear) -> camera RGB of measured sensor `sensor` (0 .. sensor_matrix_count() - 1),
// rows summing to one (Brooks et al. 2019), and its inverse.
cv::Matx33d rgb_to_camera(int sensor);
cv::Matx33d camera_to_rgb(int sensor);

// White-balance gains (red, blue; green = 1) the ISP applies to `raw` under `options`.
void isp_gains(const RawMosaic& raw, const CameraOptions& options, double* red, double* blue);

// Channel (0 = R, 1 = G, 2 = B) of the photosite at (y, x).
int bayer_channel(BayerPattern bayer, int y, int x);

// Linear camera RGB (CV_32FC3, [0,1]) -> 8-bit sRGB: white-balance gains, colour matrix,
// gamma, then finish_isp.
Image render_linear_rgb(cv::Mat rgb, double red_gain, double blue_gain, const CameraOptions& options);

// The ISP's last steps on an 8-bit sRGB picture: tone curve, denoise, sharpen (as options say).
cv::Mat finish_isp(cv::Mat rgb8, const CameraOptions& options);

Expected<Image> process_raw_libraw(const RawMosaic& raw, const CameraOptions& options);
Expected<Image> process_raw_developer(const RawMosaic& raw, const CameraOptions& options);

}  // namespace edgefleet::detail
