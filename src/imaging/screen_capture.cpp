#include "edgefleet/screen_capture.h"

#include <algorithm>
#include <cmath>
#include <random>

#include <opencv2/imgproc.hpp>

#include "imaging/camera_model.h"
#include "imaging/opencv_image.h"

namespace edgefleet {

ScreenCaptureDraw draw_screen_capture(const ScreenCaptureOptions& options) {
  // One generator per seed, drawn in a fixed order, so a tolerance set to zero leaves the
  // other draws unchanged.
  std::mt19937_64 rng(options.seed * 0x9E3779B97F4A7C15ULL + 0x5C4EE11ULL);
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  const double u_scale = unit(rng), u_x = unit(rng), u_y = unit(rng), u_rotate = unit(rng), u_keystone = unit(rng);
  const double u_blur = unit(rng), u_exposure = unit(rng);
  ScreenCaptureDraw draw;
  draw.scale = 1.0 + options.scale * u_scale;
  draw.shift_x = options.shift * u_x;
  draw.shift_y = options.shift * u_y;
  draw.rotate_degrees = options.rotate * u_rotate;
  draw.keystone = options.keystone * u_keystone;
  draw.blur = options.blur * (u_blur + 1.0) / 2.0;
  draw.exposure = options.exposure * u_exposure;
  return draw;
}

Expected<Image> photograph_screen(const Image& picture, const ScreenCaptureOptions& options) {
  if (picture.empty() || picture.width < 2 || picture.height < 2) return invalid_argument("screen: picture smaller than 2x2");
  if (options.scale < 0 || options.shift < 0 || options.rotate < 0 || options.keystone < 0 || options.blur < 0 ||
      options.exposure < 0) {
    return invalid_argument("screen: tolerances must not be negative");
  }
  const ScreenCaptureDraw d = draw_screen_capture(options);
  try {
    cv::Mat out = mat_view(picture);
    const double w = picture.width, h = picture.height;
    const bool moved = d.scale != 1.0 || d.shift_x != 0 || d.shift_y != 0 || d.rotate_degrees != 0 || d.keystone != 0;
    if (moved) {
      // Where the picture's corners land in the photo: similarity about the centre, then the
      // keystone stretches one side's height and shrinks the other's.
      const double angle = d.rotate_degrees * M_PI / 180.0;
      const double c = std::cos(angle) * d.scale, s = std::sin(angle) * d.scale;
      const cv::Point2f source[4] = {{0, 0}, {static_cast<float>(w), 0}, {static_cast<float>(w), static_cast<float>(h)},
                                     {0, static_cast<float>(h)}};
      cv::Point2f target[4];
      for (int i = 0; i < 4; ++i) {
        double x = source[i].x - w / 2, y = source[i].y - h / 2;
        y *= 1.0 + d.keystone * (x / (w / 2));
        target[i] = cv::Point2f(static_cast<float>(c * x - s * y + w / 2 + d.shift_x * w),
                                static_cast<float>(s * x + c * y + h / 2 + d.shift_y * h));
      }
      cv::Mat warped;
      cv::warpPerspective(out, warped, cv::getPerspectiveTransform(source, target), out.size(), cv::INTER_LINEAR,
                          cv::BORDER_REPLICATE);
      out = warped;
    }
    if (d.blur * std::min(w, h) > 0.05) {
      cv::Mat blurred;
      cv::GaussianBlur(out, blurred, cv::Size(0, 0), d.blur * std::min(w, h));
      out = blurred;
    }
    if (d.exposure != 0) {
      cv::Mat lut(1, 256, CV_8U);
      const double gain = std::pow(2.0, d.exposure);
      for (int i = 0; i < 256; ++i) {
        const double linear = std::min(1.0, detail::srgb_to_linear(i / 255.0) * gain);
        lut.at<std::uint8_t>(i) = cv::saturate_cast<std::uint8_t>(detail::linear_to_srgb(linear) * 255.0);
      }
      cv::Mat exposed;
      cv::LUT(out, lut, exposed);
      out = exposed;
    }
    return image_from_mat(out);
  } catch (const cv::Exception& e) {
    return internal_error("screen: OpenCV: " + first_meaningful_line(e.what()));
  }
}

}  // namespace edgefleet
