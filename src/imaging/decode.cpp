#include "edgefleet/decode.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "imaging/opencv_image.h"

namespace edgefleet {

Expected<Image> decode_image(const std::vector<std::uint8_t>& bytes, const std::string& origin,
                             const DecodeLimits& limits) {
  if (bytes.empty()) return corrupt(origin + ": empty file, not an image");
  cv::Mat decoded;
  try {
    const cv::Mat buffer(1, static_cast<int>(bytes.size()), CV_8U, const_cast<std::uint8_t*>(bytes.data()));
    decoded = cv::imdecode(buffer, cv::IMREAD_ANYCOLOR | cv::IMREAD_ANYDEPTH);
  } catch (const cv::Exception& e) {
    return corrupt(origin + ": cannot decode image (" + e.err + ")");
  }
  if (decoded.empty()) return corrupt(origin + ": not a decodable image (truncated or unknown format)");
  if (static_cast<std::size_t>(decoded.total()) > limits.max_pixels) {
    return invalid_argument(origin + ": " + std::to_string(decoded.cols) + "x" + std::to_string(decoded.rows) +
                            " pixels is over the limit of " + std::to_string(limits.max_pixels));
  }
  if (decoded.depth() == CV_16U) decoded.convertTo(decoded, CV_8U, 1.0 / 257.0);
  if (decoded.depth() != CV_8U) return unsupported(origin + ": pixel depth other than 8 or 16 bits");
  cv::Mat rgb;
  switch (decoded.channels()) {
    case 1: rgb = decoded; break;
    case 3: cv::cvtColor(decoded, rgb, cv::COLOR_BGR2RGB); break;
    case 4: cv::cvtColor(decoded, rgb, cv::COLOR_BGRA2RGB); break;
    default: return unsupported(origin + ": " + std::to_string(decoded.channels()) + " channels");
  }
  return image_from_mat(rgb);
}

}  // namespace edgefleet
